# ruff: noqa: S603, S607 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Load generators: wrk (closed loop, throughput) and an asyncio open-loop generator (latency at a
fixed arrival rate, measured from each request's *scheduled* time, so a stall is not hidden by
coordinated omission)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
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
class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer


async def _one(host: str, port: int, raw: bytes, pool: list[_Conn]) -> tuple[int, bool]:
    conn = pool.pop() if pool else None
    if conn is None:
        reader, writer = await asyncio.open_connection(host, port)
        conn = _Conn(reader, writer)
    conn.writer.write(raw)
    status_line = await conn.reader.readline()
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await conn.reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await conn.reader.readexactly(length) if length else b""
    if close:
        conn.writer.close()
    else:
        pool.append(conn)
    return status, b'"active": true' in body


async def _open_loop(host: str, port: int, requests: list[bytes], rate: float, seconds: float,
                     timeout: float) -> Result:
    pool: list[_Conn] = []
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    active = 0
    total = int(rate * seconds)
    t0 = loop.time() + 0.05

    async def fire(i: int, scheduled: float) -> None:
        nonlocal errors, active
        try:
            status, was_active = await asyncio.wait_for(_one(host, port, requests[i % len(requests)], pool), timeout)
            if status != 200:
                errors += 1
            active += was_active
        except Exception:  # noqa: BLE001 - any failure is an error of the run
            errors += 1
        latencies.append(loop.time() - scheduled)

    tasks = []
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(i, scheduled)))
    await asyncio.gather(*tasks)
    for conn in pool:
        conn.writer.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return Result(requests=total, seconds=seconds, p50_ms=pct(0.50), p99_ms=pct(0.99), p999_ms=pct(0.999),
                  ok=total - errors, errors=errors, active=active, samples=latencies)


def open_loop(url_host: str, port: int, path: str, lines: list[tuple[str, str]], *, rate: float,
              seconds: float, timeout: float = 5.0) -> Result:
    requests = []
    for auth, body in lines:
        head = (f"POST {path} HTTP/1.1\r\nHost: {url_host}\r\nX-Forwarded-Proto: https\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n")
        if auth:
            head += f"Authorization: {auth}\r\n"
        requests.append((head + "\r\n" + body).encode())
    started = time.monotonic()
    result = asyncio.run(_open_loop(url_host, port, requests, rate, seconds, timeout))
    result.seconds = max(result.seconds, time.monotonic() - started - 0.05)
    return result
