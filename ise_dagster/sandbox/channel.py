"""The host end of the tool-server protocol: one attached exec, line-delimited JSON.

The exec runs without a TTY, so Docker multiplexes its stdout and stderr into frames
(8-byte header: stream id, 3 zero bytes, big-endian payload length). stdin is a raw byte
stream. We demultiplex by hand so that we can put deadlines on every read.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from typing import Any

import docker

_HEADER = struct.Struct(">BxxxL")
STDERR_TAIL = 16 * 1024


class ChannelClosed(Exception):
    """The tool server's stream ended or broke."""


class ChannelTimeout(Exception):
    """No response within the deadline."""


class Channel:
    """A running tool server inside a container, reached through one attached exec."""

    def __init__(
        self,
        api: docker.APIClient,
        container_id: str,
        cmd: list[str],
        *,
        user: str,
        env: dict[str, str],
        workdir: str,
    ) -> None:
        self.api = api
        self.exec_id: str = api.exec_create(
            container_id, cmd, stdin=True, stdout=True, stderr=True, tty=False,
            user=user, environment=env, workdir=workdir,
        )["Id"]  # fmt: skip
        raw = api.exec_start(self.exec_id, socket=True)
        self._keepalive = raw  # closing the wrapper's response would close the socket
        self._sock: socket.socket = getattr(raw, "_sock", raw)
        self._buf = bytearray()  # undecoded frame bytes
        self._out = bytearray()  # demultiplexed stdout
        self.stderr_tail = bytearray()  # last bytes the server wrote to stderr (diagnostics)
        self.closed = False

    def send(self, obj: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        except OSError as exc:
            self.closed = True
            raise ChannelClosed(f"send failed: {exc}") from exc

    def recv(self, deadline: float) -> dict[str, Any]:
        """Next JSON line from the server; raises ChannelClosed / ChannelTimeout."""
        while True:
            nl = self._out.find(b"\n")
            if nl >= 0:
                line = bytes(self._out[:nl])
                del self._out[: nl + 1]
                try:
                    return json.loads(line)
                except ValueError as exc:
                    raise ChannelClosed(f"garbled line from tool server: {line[:200]!r}") from exc
            self._fill(deadline)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelTimeout("tool server did not answer in time")
        try:
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(1 << 18)
        except TimeoutError as exc:
            raise ChannelTimeout("tool server did not answer in time") from exc
        except OSError as exc:
            self.closed = True
            raise ChannelClosed(f"recv failed: {exc}") from exc
        if not chunk:
            self.closed = True
            raise ChannelClosed("tool server stream ended")
        self._buf += chunk
        while len(self._buf) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buf)
            if len(self._buf) < _HEADER.size + size:
                break
            payload = self._buf[_HEADER.size : _HEADER.size + size]
            del self._buf[: _HEADER.size + size]
            if stream == 1:
                self._out += payload
            else:
                self.stderr_tail = (self.stderr_tail + payload)[-STDERR_TAIL:]

    def exit_code(self, wait_s: float = 1.0) -> int | None:
        """The server exec's exit code once it has ended (None if still running/unknown)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                info = self.api.exec_inspect(self.exec_id)
            except docker.errors.APIError:
                return None
            if not info.get("Running"):
                return info.get("ExitCode")
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
