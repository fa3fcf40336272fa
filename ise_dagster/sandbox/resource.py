"""`SandboxResource`: hands out one fresh, hardened container per trajectory."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import docker
import docker.errors
import docker.types
from pydantic import Field, PrivateAttr

from ise_dagster.sandbox import cleanup
from ise_dagster.sandbox.image import ensure_image
from ise_dagster.sandbox.result import SandboxInfraError
from ise_dagster.sandbox.workspace import STARTUP_S, Workspace

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*$", re.I)


def parse_size(text: str) -> int:
    """'512m' -> bytes (k/m/g are powers of 1024, as in Docker)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"bad size {text!r}; use e.g. '512m' or '2g'")
    return int(float(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " "))


def docker_client() -> docker.DockerClient:
    """Client from the standard environment (DOCKER_HOST etc.), or a clear error."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise SandboxInfraError(
            f"cannot reach the Docker engine at {host}: {exc}. Start Docker (`sudo systemctl "
            "start docker`, `sudo service docker start` or Docker Desktop), make sure your "
            "user may use it (the `docker` group), or point DOCKER_HOST at a running engine."
        ) from exc


class _Gate:
    """At most `limit` holders; waiting callers are admitted in arrival order (FIFO)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.held = 0
        self._queue: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()

    def acquire(self, closed: Callable[[], bool] = lambda: False) -> float:
        """Wait for a slot; returns the seconds waited."""
        ticket, started = object(), time.monotonic()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self.held >= self.limit:
                    if closed():
                        raise SandboxInfraError("sandbox resource is closed")
                    self._cond.wait(1.0)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self.held += 1
        return time.monotonic() - started

    def try_acquire(self) -> bool:
        with self._cond:
            if self._queue or self.held >= self.limit:
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.held -= 1
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._queue)


def _stderr(message: str) -> None:
    # Progress goes to stderr so that stdout stays machine-readable (`ise sandbox exec`).
    print(message, file=sys.stderr, flush=True)


class _Manager:
    """Everything with state behind the (immutable, pydantic) resource config."""

    def __init__(self, cfg: SandboxResource, progress: Callable[[str], None] | None = None) -> None:
        progress = progress or _stderr
        self.cfg = cfg
        mem = parse_size(cfg.mem_limit)
        tmpfs_total = sum(
            parse_size(s) for s in (cfg.workspace_size, cfg.tmp_size, cfg.home_size, cfg.shm_size)
        )
        # tmpfs pages are charged to the container's memory cgroup and cannot be swapped or
        # reclaimed: full disks must leave room for processes, or the OOM killer takes all.
        if tmpfs_total + 64 * 2**20 > mem:
            raise ValueError(
                f"workspace_size+tmp_size+home_size+shm_size ({tmpfs_total >> 20} MiB) must stay "
                f"at least 64 MiB below mem_limit ({mem >> 20} MiB)"
            )
        self.mem = mem
        self.client = docker_client()
        if cfg.runtime:
            runtimes = self.client.info().get("Runtimes") or {}
            if cfg.runtime not in runtimes:
                raise SandboxInfraError(
                    f"the Docker engine has no runtime {cfg.runtime!r} (it has: "
                    f"{', '.join(sorted(runtimes)) or 'none'}); install it (gVisor: see "
                    "docs/sandbox.md) or leave `runtime` unset for runc"
                )
        cleanup.install_hooks()
        swept = cleanup.sweep(self.client, cfg.label)
        if swept:
            progress(f"[sandbox] removed {len(swept)} leftover container(s): {', '.join(swept)}")
        self.image = cfg.image or ensure_image(self.client, progress, cfg.base_image)
        if cfg.image:
            try:
                self.client.images.get(cfg.image)
            except docker.errors.ImageNotFound as exc:
                raise SandboxInfraError(
                    f"image {cfg.image!r} is not present locally (this code never pulls)"
                ) from exc
        # Every live container holds a slot (pooled ones too); starts are capped separately
        # because an engine asked for 200 containers at once starts none of them in time.
        self._live = _Gate(cfg.max_live_workspaces)
        self._starts = _Gate(cfg.max_concurrent_starts)
        self._stats_lock = threading.Lock()
        self.stats = {"acquired": 0, "queue_wait_s": 0.0, "max_queue_wait_s": 0.0}
        self._pool: collections.deque[Workspace] = collections.deque()
        self._pool_lock = threading.Lock()
        self._refill = threading.Event()
        self._closed = False
        self._filler: threading.Thread | None = None
        if cfg.warm_pool_size > 0:
            self._filler = threading.Thread(
                target=self._fill_loop, name="sandbox-pool", daemon=True
            )
            self._filler.start()
            self._refill.set()

    # ------------------------------------------------------------------ containers

    def _create(self) -> Workspace:
        """Create, start and greet one container (the caller holds a live slot).

        Whatever goes wrong, of whatever type, ends in the container's removal and a
        SandboxInfraError: the container is named before it exists, so even one the engine
        created before an error reached us is found and removed."""
        cfg, api = self.cfg, self.client.api
        name = f"{cfg.label.replace('.', '-')}-{uuid.uuid4().hex[:16]}"
        self._starts.acquire(lambda: self._closed)
        cleanup.register(api, name)  # the atexit/SIGTERM hooks know it from now on
        target = name
        try:
            target = cid = self._create_container(name)
            cleanup.register(api, cid)
            cleanup.forget(name)
            # Slower starts under load: give each live workspace a little more time.
            startup_s = STARTUP_S + 0.5 * self._live.held + 2.0 * self._starts.held
            ws = Workspace(
                self.client,
                cid,
                timeout_s=cfg.timeout_s,
                max_output_bytes=cfg.max_output_bytes,
                on_close=self._release,
                startup_s=startup_s,
            )
            try:
                ws.wait_ready()
            except BaseException:
                ws._on_close = None  # removed below, released by our caller
                raise
            return ws
        except BaseException as exc:
            with contextlib.suppress(Exception):
                cleanup.remove(api, target)
            if isinstance(exc, SandboxInfraError | KeyboardInterrupt | SystemExit):
                raise
            raise SandboxInfraError(f"starting a workspace container failed: {exc!r}") from exc
        finally:
            self._starts.release()

    def _create_container(self, name: str) -> str:
        cfg, api = self.cfg, self.client.api
        host_config = api.create_host_config(
            network_mode="none",
            cap_drop=["ALL"],
            # Only for the tool server's start-up (it drops them at once, see workspace.py);
            # agent processes run as uid 1000 under no-new-privileges and never hold them.
            cap_add=["SETUID", "SETGID"],
            security_opt=["no-new-privileges"],
            mem_limit=self.mem,
            memswap_limit=self.mem,
            pids_limit=cfg.pids_limit,
            nano_cpus=int(cfg.cpus * 1e9),
            init=True,
            read_only=True,
            tmpfs={
                "/workspace": f"size={cfg.workspace_size},uid=1000,gid=1000,mode=0755,exec",
                "/home/agent": f"size={cfg.home_size},uid=1000,gid=1000,mode=0755",
                "/tmp": f"size={cfg.tmp_size},mode=1777,nosuid,nodev,exec",
            },
            shm_size=cfg.shm_size,
            log_config=docker.types.LogConfig(type="none"),
            runtime=cfg.runtime,
        )
        try:
            cid = api.create_container(
                self.image,
                # PID 1 is docker-init and its child a `sleep`, both root, which uid 1000 cannot
                # signal: an agent's `kill -9 -1` kills its own processes, not the container.
                # Root here only so that a root `docker exec` (the tool server) gets the two
                # capabilities: Docker gives execs none in a container whose user is not root.
                command=["sleep", "infinity"],
                user="0:0",
                working_dir="/workspace",
                labels=cleanup.labels(cfg.label),
                host_config=host_config,
                network_disabled=True,
                name=name,
            )["Id"]
        except docker.errors.ImageNotFound as exc:
            raise SandboxInfraError(f"workspace image {self.image} vanished: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise SandboxInfraError(f"creating a workspace container failed: {exc}") from exc
        api.start(cid)
        return cid

    def _release(self, ws: Workspace) -> None:
        try:
            # One retry; failing that, the atexit hook and the next start-up sweep remove it.
            # Never mask the caller's own exception.
            for attempt in range(2):
                try:
                    cleanup.remove(self.client.api, ws.container_id)
                    break
                except Exception:
                    if attempt == 0:
                        time.sleep(0.5)
        finally:
            self._live.release()

    def acquire(self) -> Workspace:
        if self._closed:
            raise SandboxInfraError("sandbox resource is closed")
        with self._pool_lock:
            ws = self._pool.popleft() if self._pool else None
        if self.cfg.warm_pool_size > 0:
            self._refill.set()
        if ws is not None:
            self._record(ws, 0.0)
            return ws
        waited = self._live.acquire(lambda: self._closed)
        try:
            ws = self._create()
        except BaseException:
            self._live.release()
            raise
        self._record(ws, waited)
        return ws

    def _record(self, ws: Workspace, waited: float) -> None:
        ws.queue_wait_s = waited
        with self._stats_lock:
            self.stats["acquired"] += 1
            self.stats["queue_wait_s"] += waited
            self.stats["max_queue_wait_s"] = max(self.stats["max_queue_wait_s"], waited)

    def live(self) -> int:
        return self._live.held

    # ------------------------------------------------------------------ warm pool

    def _fill_loop(self) -> None:
        while not self._closed:
            self._refill.wait()
            self._refill.clear()
            while not self._closed:
                with self._pool_lock:
                    if len(self._pool) >= self.cfg.warm_pool_size:
                        break
                if not self._live.try_acquire():
                    break  # every slot is in use: pooled containers would only add to it
                try:
                    ws = self._create()
                except Exception:
                    self._live.release()
                    break  # acquire() falls back to cold starts; try again on next acquire
                with self._pool_lock:
                    if self._closed:
                        ws.close()
                        return
                    self._pool.append(ws)

    def pool_size(self) -> int:
        with self._pool_lock:
            return len(self._pool)

    def close(self) -> None:
        self._closed = True
        self._refill.set()
        if self._filler is not None:
            self._filler.join(timeout=30)
        with self._pool_lock:
            pooled, self._pool = list(self._pool), collections.deque()
        for ws in pooled:
            ws.close()

    def info(self) -> dict[str, Any]:
        return {"image": self.image, "label": self.cfg.label, "pool": self.pool_size(),
                "live": self.live(), "waiting": self._live.waiting}  # fmt: skip


class SandboxResource(dg.ConfigurableResource):
    """Hardened per-trajectory Docker workspaces with an in-container tool server.

    Usable inside Dagster (as a resource) and outside it:
        with SandboxResource().workspace() as ws:
            ws.call("exec", {"cmd": "echo hi"})
    """

    image: str | None = Field(
        default=None, description="Workspace image; default: build/reuse the hashed local image."
    )
    base_image: str | None = Field(
        default=None, description="Local base for the build; default: debootstrap (offline)."
    )
    mem_limit: str = Field(default="512m", description="Memory limit; swap is disabled.")
    pids_limit: int = Field(default=256, description="Max processes/threads in the container.")
    cpus: float = Field(default=1.0, description="CPU quota in cores (nano_cpus).")
    workspace_size: str = Field(default="256m", description="tmpfs size of /workspace.")
    tmp_size: str = Field(default="64m", description="tmpfs size of /tmp.")
    home_size: str = Field(default="16m", description="tmpfs size of /home/agent.")
    shm_size: str = Field(default="16m", description="Size of /dev/shm.")
    timeout_s: float = Field(default=30.0, description="Default per-call timeout.")
    max_output_bytes: int = Field(default=65536, description="Cap on stdout and on stderr.")
    warm_pool_size: int = Field(default=0, description="Pre-started containers kept ready.")
    max_live_workspaces: int = Field(
        default=32,
        ge=1,
        description="Most containers alive at once (pooled ones count); more callers queue "
        "in arrival order instead of failing.",
    )
    max_concurrent_starts: int = Field(
        default=4, ge=1, description="Most containers being created and started at once."
    )
    runtime: str | None = Field(
        default=None,
        description="OCI runtime, e.g. 'runsc' for gVisor (must be registered with the engine); "
        "default: the engine's (runc).",
    )
    label: str = Field(default=cleanup.DEFAULT_LABEL, description="Label on every container.")

    _manager: _Manager | None = PrivateAttr(default=None)
    _manager_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def preflight(self) -> None:
        """Reach the engine and build the image now, from the calling (main) thread, so an
        unreachable engine fails the asset step with its own message, not as a resource
        error, and the SIGTERM hook is installed. Assets call it first."""
        try:
            self.manager()
        except SandboxInfraError as exc:
            # No engine, no image, no runtime: a retry policy's backoff would only delay the
            # message. Failures once workspaces run (a dead container) are still retried.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def manager(self) -> _Manager:
        """The live manager (Docker client, image, pool); created and swept on first use."""
        with self._manager_lock:
            if self._manager is None:
                self._manager = _Manager(self)
            return self._manager

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """A fresh workspace, removed on exit (also on exceptions and SIGTERM)."""
        ws = self.manager().acquire()
        try:
            yield ws
        finally:
            ws.close()

    def stats(self) -> dict[str, float]:
        """Workspaces handed out and the time callers queued for them (for metadata)."""
        with self._manager_lock:
            manager = self._manager
        if manager is None:
            return {"acquired": 0, "queue_wait_s": 0.0, "max_queue_wait_s": 0.0}
        with manager._stats_lock:
            return dict(manager.stats)

    def close(self) -> None:
        """Remove pooled containers. Workspaces still in use are removed by their owners."""
        with self._manager_lock:
            if self._manager is not None:
                self._manager.close()
                self._manager = None
