"""Never leave a container behind: owner labels, sweeps, and SIGTERM/atexit hooks."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import threading
from typing import Any

import docker
import docker.errors

DEFAULT_LABEL = "ise.sandbox"

_live: dict[str, docker.APIClient] = {}  # container id -> client that created it
_live_lock = threading.Lock()
_atexit_installed = False
_sigterm_installed = False


def _start_time(pid: int) -> str:
    """Kernel start time of a process (guards against PID reuse); "" if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rfind(b")") + 2 :].split()[19].decode()
    except (OSError, IndexError):
        return ""


def owner_id() -> str:
    """Identifies this process: host, pid and start time."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(owner: str) -> bool:
    """False only when we can tell the owning process is gone (same host, dead or reused pid).

    Containers owned by another host are assumed alive: a shared remote engine must not have
    its other users' workspaces swept.
    """
    host, _, rest = owner.partition(":")
    pid_s, _, started = rest.partition(":")
    if host != socket.gethostname():
        return True
    if not pid_s.isdigit():
        return False
    pid = int(pid_s)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _start_time(pid) in ("", started)


def labels(label: str) -> dict[str, str]:
    return {label: "1", f"{label}.owner": owner_id()}


def register(api: docker.APIClient, container_id: str) -> None:
    with _live_lock:
        _live[container_id] = api
    install_hooks()


def forget(container_id: str) -> None:
    """Stop tracking a container (its other name or id is tracked instead)."""
    with _live_lock:
        _live.pop(container_id, None)


def remove(api: docker.APIClient, container_id: str) -> None:
    """Force-remove one container by id or name (idempotent). Stays tracked if it fails, so
    the atexit/SIGTERM hooks try again."""
    try:
        api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        # "removal already in progress" is fine; anything else is worth a retry by sweep.
        if "already in progress" not in str(exc):
            raise
    forget(container_id)


def sweep(client: docker.DockerClient, label: str = DEFAULT_LABEL, *,
          everything: bool = False) -> list[str]:  # fmt: skip
    """Remove containers with our label whose owner process is gone (or all of them).

    Returns the removed container names.
    """
    removed = []
    for c in client.api.containers(all=True, filters={"label": label}):
        owner = c.get("Labels", {}).get(f"{label}.owner", "")
        if not everything and owner and owner_alive(owner):
            continue
        with contextlib.suppress(docker.errors.APIError):
            remove(client.api, c["Id"])
            removed.append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
    return removed


def remove_all_live() -> None:
    """Remove every container this process created and has not removed yet."""
    with _live_lock:
        items = list(_live.items())
    for cid, api in items:
        with contextlib.suppress(Exception):
            remove(api, cid)


def install_hooks() -> None:
    """atexit + SIGTERM (chained to any previous handler). Signals only from the main thread."""
    global _atexit_installed, _sigterm_installed
    if not _atexit_installed:
        _atexit_installed = True
        atexit.register(remove_all_live)
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return  # signal.signal would raise off the main thread; atexit still covers exits
    _sigterm_installed = True
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        remove_all_live()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
