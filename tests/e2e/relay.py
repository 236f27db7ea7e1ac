"""A TCP relay the e2e tests put between a client and the real server, to cut a connection
(``cut``: both sides reset), stall it silently (``stall``: bytes stop flowing, sockets stay open)
or resume it, the way a proxy restart or a dropped network path does."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class Relay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._accepting = True
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._accepting:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        socks = [a, b]
        try:
            while True:
                if not self._flowing.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select(socks, [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self, *, refuse_new: bool = True) -> None:
        """Reset every open connection; with ``refuse_new``, new ones are closed at once."""
        self._accepting = not refuse_new
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._accepting = True
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
