"""Start `dagster dev` the way `make ui` does, in its own process group, and stop it the way
a terminal's Ctrl-C does (SIGINT to the whole group)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")  # .venv/bin/dagster, as in `make ui`
LOCATION = "ise_dagster.definitions"

_WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_processes(pgid: int, zombies: bool = False) -> dict[int, str]:
    """Live processes (and zombies if asked) whose process group is `pgid`: pid -> command.

    Only this group is ever looked at: the host may run as root, so "processes of this
    user" would include everything."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            # Fields after "(comm)": state ppid pgrp ...; comm may contain spaces and ")".
            state, _ppid, pgrp = stat[stat.rfind(b")") + 2 :].split()[:3]
            if int(pgrp) != pgid or (state == b"Z" and not zombies):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue  # gone meanwhile
        found[int(entry)] = cmd
    return found


def _short(cmd: str, width: int = 160) -> str:
    return cmd if len(cmd) <= width else cmd[: width - 3] + "..."


@dataclass
class StopResult:
    seconds: float
    left: dict[int, str] = field(default_factory=dict)  # processes still alive at the deadline

    def describe(self) -> str:
        return "\n".join(f"  pid {pid}: {_short(cmd)}" for pid, cmd in sorted(self.left.items()))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class DagsterDev:
    """`DAGSTER_HOME=<tmp> dagster dev -w workspace.yaml -h 127.0.0.1 -p <free port>` from the
    repository root, in a new session (its own process group, like a terminal job).

    Data goes to `<root>/data` (ISE_DATA_DIR), the instance to `<root>/dagster_home`, and
    everything the processes print to `<root>/dagster-dev.log`."""

    def __init__(self, root: Path, port: int | None = None, env: dict[str, str] | None = None):
        self.root = Path(root)
        self.home = self.root / "dagster_home"
        self.data_dir = self.root / "data"
        self.log_path = self.root / "dagster-dev.log"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    # ------------------------------------------------------------------ lifecycle

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISE_LLM_")}
        env.update(DAGSTER_HOME=str(self.home), ISE_DATA_DIR=str(self.data_dir))
        env.update(self.extra_env)
        return env

    def start(self) -> DagsterDev:
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        cmd = [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # As in a terminal: an ignored or blocked SIGINT survives exec, and a pytest
                # started in the background (nohup ... &) or a thread's signal mask can
                # hand one down, so `dagster dev` would never see this helper's Ctrl-C.
                preexec_fn=_default_sigint,
            )
        return self

    @property
    def pgid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid  # a session leader's pgid is its pid

    def processes(self) -> dict[int, str]:
        if self.proc is not None:
            self.proc.poll()  # reap the leader so that it does not linger as a zombie
        return group_processes(self.pgid)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until the webserver answers and the code location has loaded its definitions."""
        deadline = time.monotonic() + timeout
        last = "nothing yet"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                status = self.location_status()
                if status == ("LOADED", "RepositoryLocation"):
                    return
                if status[1] == "PythonError":
                    raise RuntimeError(f"code location failed to load:\n{self.log_tail()}")
                last = f"location {status}"
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise TimeoutError(
            f"dagster dev not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}"
        )

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.load(resp)
        if payload.get("errors"):
            raise ValueError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def location_status(self) -> tuple[str, str]:
        with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as resp:
            resp.read()
        data = self.graphql(_WORKSPACE_QUERY, timeout=10)["workspaceOrError"]
        entry = next(e for e in data["locationEntries"] if e["name"] == LOCATION)
        return entry["loadStatus"], (entry["locationOrLoadError"] or {}).get("__typename", "")

    def interrupt(self, timeout: float = 10.0) -> StopResult:
        """Ctrl-C: SIGINT to the whole process group, then wait up to `timeout` seconds for
        every process in it to exit. Whatever is left is reported, not killed."""
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):  # nothing left to interrupt
            os.killpg(self.pgid, signal.SIGINT)
        while True:
            left = self.processes()
            elapsed = time.monotonic() - started
            if not left or elapsed >= timeout:
                return StopResult(round(elapsed, 2), left)
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL whatever is left of the group (only this group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10  # until reaped: a zombie still "owns" its containers
        while group_processes(self.pgid, zombies=True) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> StopResult:
        """Ctrl-C, and SIGKILL for anything still there after `timeout` seconds."""
        result = self.interrupt(timeout)
        if result.left:
            self.kill()
        return result

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.processes():
            self.stop()
