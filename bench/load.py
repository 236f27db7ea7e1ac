# ruff: noqa: S603, S607 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Load generators: wrk (closed loop, throughput) and an open-loop generator (latency at a fixed
arrival rate, measured from each request's *scheduled* time, so a stall is not hidden by
coordinated omission)."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA = r"""
local bodies = {}
local counter, nthreads, path = 0, 1, "/"
ok, bad, active = 0, 0, 0
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODIES"), "r"))
  for line in f:lines() do
    local tab = string.find(line, "\t", 1, true)
    bodies[#bodies + 1] = {string.sub(line, 1, tab - 1), string.sub(line, tab + 1)}
  end
  f:close()
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  counter = tonumber(os.getenv("BENCH_START") or "0") + id
  path = os.getenv("BENCH_PATH")
end

function request()
  local item = bodies[(counter % #bodies) + 1]
  counter = counter + nthreads
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["X-Forwarded-Proto"] = "https"}
  if item[1] ~= "" then headers["Authorization"] = item[1] end
  return wrk.format("POST", path, headers, item[2])
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if string.find(body, '"active": true', 1, true) or string.find(body, '"access_token"', 1, true) then
      active = active + 1
    end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local t_ok, t_bad, t_active = 0, 0, 0
  for _, thread in ipairs(threads) do
    t_ok = t_ok + thread:get("ok")
    t_bad = t_bad + thread:get("bad")
    t_active = t_active + thread:get("active")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"ok": %d, "non200": %d, "active": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    t_ok, t_bad, t_active, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    ok: int = 0
    errors: int = 0
    active: int = 0
    samples: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def write_bodies(path: Path, lines: list[tuple[str, str]]) -> Path:
    with path.open("w") as fh:
        for auth, body in lines:
            fh.write(f"{auth}\t{body}\n")
    return path


def run_wrk(url: str, path: str, bodies: Path, *, seconds: float, connections: int, threads: int, start: int,
            workdir: Path) -> Result:
    script = workdir / "bench.lua"
    if not script.exists():
        script.write_text(LUA)
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_THREADS": str(threads), "BENCH_START": str(start),
           "BENCH_PATH": path}
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCHJSON "))
    return Result(requests=raw["requests"], seconds=raw["duration_us"] / 1e6, p50_ms=raw["p50_us"] / 1e3,
                  p99_ms=raw["p99_us"] / 1e3, p999_ms=raw["p999_us"] / 1e3, ok=raw["ok"],
                  errors=raw["non200"] + raw["socket_errors"], active=raw["active"])


# --- open loop -------------------------------------------------------------------------------------
# A sender thread opens a connection and writes each request at its scheduled instant (time.sleep
# is precise to tens of microseconds; asyncio's timers round up to the millisecond, which showed as
# a ~1 ms floor even on the bare view); a receiver thread waits on every open socket and stamps
# each response as it completes. Latency runs from the *scheduled* instant, so a stall is not
# hidden by coordinated omission. One connection per request, as the sync workers require.
def _complete(buffer: bytearray) -> tuple[int, bytes] | None:
    """(status, body) once ``buffer`` holds a whole response with a Content-Length, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if len(buffer) < end + 4 + length:
        return None
    return int(head[0].split()[1]), bytes(buffer[end + 4:end + 4 + length])


def open_loop(url_host: str, port: int, path: str, lines: list[tuple[str, str]], *, rate: float,
              seconds: float, timeout: float = 5.0) -> Result:
    requests = []
    for auth, body in lines:
        head = (f"POST {path} HTTP/1.1\r\nHost: {url_host}\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n")
        if auth:
            head += f"Authorization: {auth}\r\n"
        requests.append((head + "\r\n" + body).encode())
    total = int(rate * seconds)
    selector = selectors.DefaultSelector()
    inflight: dict[socket.socket, tuple[float, bytearray]] = {}
    lock = threading.Lock()
    sending_done = threading.Event()
    latencies: list[float] = []
    counts = {"errors": 0, "active": 0}

    def finish(sock: socket.socket, scheduled: float, now: float, outcome: tuple[int, bytes] | None) -> None:
        with lock:
            inflight.pop(sock, None)
        try:
            selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        latencies.append(now - scheduled)
        if outcome is None or outcome[0] != 200:
            counts["errors"] += 1
        elif b'"active": true' in outcome[1]:
            counts["active"] += 1

    def receive() -> None:
        while True:
            with lock:
                idle = not inflight
            if idle and sending_done.is_set():
                return
            events = selector.select(timeout=0.01) if not idle else (time.sleep(0.0005) or [])
            now = time.perf_counter()
            for key, _ in events:
                sock = key.fileobj
                with lock:
                    entry = inflight.get(sock)
                if entry is None:
                    continue
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                entry[1].extend(chunk)
                outcome = _complete(entry[1])
                if outcome is not None or not chunk:
                    finish(sock, entry[0], now, outcome)
            with lock:
                late = [(sock, entry[0]) for sock, entry in inflight.items() if now - entry[0] > timeout]
            for sock, scheduled in late:
                finish(sock, scheduled, now, None)

    receiver = threading.Thread(target=receive, name="open-loop-receiver", daemon=True)
    receiver.start()
    started = time.perf_counter()
    t0 = started + 0.05
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            sock = socket.create_connection((url_host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(requests[i % len(requests)])
            sock.setblocking(False)
        except OSError:
            latencies.append(time.perf_counter() - scheduled)
            counts["errors"] += 1
            continue
        with lock:
            inflight[sock] = (scheduled, bytearray())
        selector.register(sock, selectors.EVENT_READ)
    sending_done.set()
    receiver.join()
    selector.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return Result(requests=total, seconds=max(seconds, time.perf_counter() - t0), p50_ms=pct(0.50),
                  p99_ms=pct(0.99), p999_ms=pct(0.999), ok=total - counts["errors"], errors=counts["errors"],
                  active=counts["active"], samples=latencies)
