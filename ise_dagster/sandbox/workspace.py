"""One live workspace container and the tool server inside it."""

from __future__ import annotations

import base64
import io
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors

from ise_dagster.sandbox.channel import Channel, ChannelClosed, ChannelTimeout
from ise_dagster.sandbox.result import SandboxInfraError, ToolResult

AGENT_TOOLS = frozenset({"exec", "read", "write", "edit", "apply_patch", "process"})
TOOLSERVER_PATH = "/opt/ise/toolserver.py"
AGENT_USER = "1000:1000"
# The tool server starts as root with CAP_SETUID/CAP_SETGID only and at once becomes real uid
# 0 / effective uid 1000 with no capabilities (toolserver.separate_from_agent): agent
# processes cannot signal, ptrace or write into it. See docs/sandbox.md.
SERVER_USER = "0:0"
AGENT_ENV = {
    "HOME": "/home/agent",
    "USER": "agent",
    "LOGNAME": "agent",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    # Same set and dict-of-str ordering in the dialogue and its replay.
    "PYTHONHASHSEED": "0",
}
# Extra seconds the host waits beyond a call's own timeout before declaring the server lost.
HOST_SLACK_S = 15.0
# How long a fresh tool server may take to greet, unless the resource passes a longer
# deadline (it grows with the number of live workspaces: a loaded engine starts slowly).
STARTUP_S = 15.0
MAX_RESTARTS = 3


class Workspace:
    """A fresh, hardened container for one trajectory.

    `call()` never raises for anything the agent does: tool errors come back as
    error_kind="tool". If the sandbox fails (container died, OOM took the supervisor, Docker
    went away) the result has error_kind="infra" and `alive` turns False for good.
    One caller thread at a time; calls are serialised by a lock.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        container_id: str,
        *,
        timeout_s: float,
        max_output_bytes: int,
        on_close: Callable[[Workspace], None] | None = None,
        startup_s: float = STARTUP_S,
    ) -> None:
        self.client = client
        self.api: docker.APIClient = client.api
        self.container_id = container_id
        self.timeout_s = timeout_s
        self.max_output_bytes = max_output_bytes
        self.alive = True
        self.death_reason: str | None = None
        self.restarts = 0
        self.calls = 0
        self._on_close = on_close
        self._lock = threading.Lock()
        self._next_id = 1
        self._oom_kills = -1
        self._channel: Channel | None = None
        self._ready = False
        self.startup_s = startup_s
        self.queue_wait_s = 0.0  # time the caller waited for a free slot (set by the resource)
        self.start_supervisor()

    # ------------------------------------------------------------------ supervisor

    def start_supervisor(self) -> None:
        """Start the tool server (one attached exec); readiness is awaited on first use."""
        cmd = [
            "python3", "-I", TOOLSERVER_PATH,
            "--max-output-bytes", str(self.max_output_bytes),
            "--default-timeout", str(self.timeout_s),
            "--separate", "1",
        ]  # fmt: skip
        try:
            self._channel = Channel(
                self.api, self.container_id, cmd, user=SERVER_USER, env=AGENT_ENV,
                workdir="/workspace",
            )  # fmt: skip
        except Exception as exc:  # docker-py raises more than DockerException under load
            raise SandboxInfraError(f"could not start the tool server: {exc!r}") from exc
        self._ready = False

    def _await_ready(self, deadline: float) -> None:
        assert self._channel is not None
        hello = self._channel.recv(deadline)
        if hello.get("event") != "ready":
            raise ChannelClosed(f"unexpected greeting from tool server: {hello!r}")
        if not hello.get("separated"):
            # Without it an agent command could forge tool results: refuse to run at all.
            raise ChannelClosed("the tool server could not leave the agent's uid")
        self._oom_kills = hello.get("oom_kills", -1)
        self._ready = True

    def wait_ready(self) -> None:
        """Block until the tool server greets (the resource does this inside acquire)."""
        with self._lock:
            if self._ready:
                return
            try:
                self._await_ready(time.monotonic() + self.startup_s)
            except ChannelTimeout as exc:
                self._die(f"tool server did not start within {self.startup_s:.0f}s")
                raise SandboxInfraError(self.death_reason or "") from exc
            except Exception as exc:
                tail = bytes(self._channel.stderr_tail[-600:]).decode(errors="replace").strip()
                self._die(f"tool server did not start: {exc}" + (f"; {tail}" if tail else ""))
                raise SandboxInfraError(self.death_reason or "") from exc

    # ------------------------------------------------------------------ calls

    def call(self, tool: str, args: dict[str, Any] | None = None, *,
             timeout_s: float | None = None) -> ToolResult:  # fmt: skip
        """Run one agent tool (exec, read, write, edit, apply_patch, process)."""
        if tool not in AGENT_TOOLS:
            return ToolResult.tool_error(
                str(tool), f"unknown tool {tool!r}; known: {sorted(AGENT_TOOLS)}"
            )
        return self._request(tool, args, timeout_s=timeout_s, agent=True)

    def _request(self, tool: str, args: Any, *, timeout_s: float | None = None,
                 agent: bool = False) -> ToolResult:  # fmt: skip
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return ToolResult.tool_error(tool, f"args must be an object, got {type(args).__name__}")
        if timeout_s is not None:
            args = {**args, "timeout_s": timeout_s}
        call_timeout = args.get("timeout_s", self.timeout_s)
        if not isinstance(call_timeout, int | float) or isinstance(call_timeout, bool):
            call_timeout = self.timeout_s  # the server rejects it with a tool error
        with self._lock:
            if not self.alive:
                return ToolResult.infra_error(tool, f"workspace is dead: {self.death_reason}")
            self.calls += 1
            req_id = self._next_id
            self._next_id += 1
            deadline = time.monotonic() + min(float(call_timeout), 86400.0) + HOST_SLACK_S
            assert self._channel is not None
            try:
                if not self._ready:
                    self._await_ready(time.monotonic() + self.startup_s)
                self._channel.send({"id": req_id, "tool": tool, "args": args})
                response = self._channel.recv(deadline)
            except (TypeError, ValueError) as exc:  # args not JSON-serialisable
                return ToolResult.tool_error(tool, f"args are not JSON-serialisable: {exc}")
            except ChannelTimeout:
                self._die("tool server stopped answering (host-side deadline passed)")
                return ToolResult.infra_error(tool, self.death_reason or "")
            except ChannelClosed as exc:
                return self._on_lost(tool, str(exc), agent)
            except Exception as exc:  # anything else from the socket layer is the sandbox's
                self._die(f"tool server channel failed: {exc!r}")
                return ToolResult.infra_error(tool, self.death_reason or "")
            if response.get("id") != req_id:
                self._die(f"protocol desync: expected id {req_id}, got {response.get('id')!r}")
                return ToolResult.infra_error(tool, self.death_reason or "")
            self._oom_kills = response.pop("oom_kills", self._oom_kills)
            return ToolResult.from_response(tool, response)

    def _on_lost(self, tool: str, why: str, agent: bool) -> ToolResult:
        """The supervisor's stream ended. Decide whether the agent or the sandbox did it."""
        state = self._container_state()
        if state is None or not state.get("Running"):
            oom = bool(state and state.get("OOMKilled"))
            detail = ""
            if state is not None:
                detail = f" (status={state.get('Status')}, exit={state.get('ExitCode')}"
                detail += f", oom_killed={oom})"
            self._die(f"container is gone{detail}: {why}")
            return ToolResult.infra_error(tool, self.death_reason or "", oom_killed=oom)
        assert self._channel is not None
        code = self._channel.exit_code()
        oom_before = self._oom_kills
        if self.restarts >= MAX_RESTARTS or code is None or code < 128:
            self._die(f"tool server lost (exit={code}): {why}")
            return ToolResult.infra_error(tool, self.death_reason or "")
        # Killed by a signal while the container lives on (agent processes cannot signal it:
        # the OOM killer or the engine). Restart it and report the truth.
        self.restarts += 1
        self._channel.close()
        try:
            self.start_supervisor()
            self._await_ready(time.monotonic() + self.startup_s)
        except (SandboxInfraError, ChannelClosed, ChannelTimeout) as exc:
            self._die(f"tool server lost and could not be restarted: {exc}")
            return ToolResult.infra_error(tool, self.death_reason or "")
        if 0 <= oom_before < self._oom_kills:
            self._die("the out-of-memory killer took the tool server")
            return ToolResult.infra_error(tool, self.death_reason or "", oom_killed=True)
        if not agent:
            raise _Retry
        return ToolResult(
            tool=tool,
            ok=False,
            error_kind="tool",
            error=(
                f"the tool server was killed by signal {code - 128} while this call ran "
                "(the workspace's memory limit or the engine); files are intact, the tool "
                "server was restarted"
            ),
            exit_code=code,
            extras={"supervisor_restarted": True},
        )

    def _container_state(self) -> dict[str, Any] | None:
        try:
            return self.api.inspect_container(self.container_id)["State"]
        except docker.errors.DockerException:
            return None
        except Exception:  # requests' connection errors when the daemon is gone
            return None

    def _die(self, reason: str) -> None:
        self.alive = False
        self.death_reason = reason
        if self._channel is not None:
            self._channel.close()

    # ------------------------------------------------------------------ host helpers

    def _internal(self, tool: str, args: dict[str, Any], timeout_s: float = 120.0) -> ToolResult:
        """Host-side request; raises SandboxInfraError instead of returning infra results."""
        for _ in range(2):
            try:
                res = self._request(tool, {**args, "timeout_s": timeout_s})
            except _Retry:
                continue
            if res.is_infra_error:
                raise SandboxInfraError(res.error)
            return res
        raise SandboxInfraError(f"{tool}: tool server keeps getting killed")

    def seed_tar(self, data: bytes) -> None:
        """Extract a tar archive into /workspace (put_archive cannot write to a tmpfs)."""
        res = self._internal("untar", {"data_b64": base64.b64encode(data).decode()})
        if not res.ok:
            raise ValueError(f"seeding the workspace failed: {res.error}: {res.stderr}")

    def seed_files(self, files: dict[str, str | bytes]) -> None:
        """Create files (path relative to /workspace -> text or bytes)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(name.lstrip("/"))
                info.size = len(data)
                info.mode = 0o644
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        self.seed_tar(buf.getvalue())

    def seed_dir(self, path: str | Path) -> None:
        """Copy a host directory's contents into /workspace."""
        src = Path(path)
        if not src.is_dir():
            raise ValueError(f"{src} is not a directory")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for child in sorted(src.iterdir()):
                tar.add(child, arcname=child.name)
        self.seed_tar(buf.getvalue())

    def verify(self, source: str, cwd: str = ".", timeout_s: float = 120.0) -> ToolResult:
        """Run a verifier (Python source) with every agent process stopped; verdict = exit 0.

        Raises SandboxInfraError if the sandbox fails; a failing verifier is a normal result.
        """
        return self._internal("verify", {"source": source, "cwd": cwd}, timeout_s)

    def snapshot(self, include_contents: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """Files under /workspace with sha256 and size, plus the contents of selected paths."""
        res = self._internal("snapshot", {"include_contents": list(include_contents)})
        if not res.ok:
            raise ValueError(f"snapshot failed: {res.error}")
        return {
            "files": res.extras["files"],
            "contents": res.extras["contents"],
            "files_truncated": res.extras["files_truncated"],
        }

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Remove the container. Idempotent; safe from a signal handler (takes no lock)."""
        if self.alive:
            self.alive = False
            self.death_reason = "workspace closed"
        if self._channel is not None:
            self._channel.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Retry(Exception):
    """Internal: the supervisor was restarted; retry the host-side request once."""
