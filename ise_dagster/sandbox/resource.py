"""`SandboxResource`: hands out one fresh, hardened container per trajectory."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import threading
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
from ise_dagster.sandbox.workspace import Workspace

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
        cfg, api = self.cfg, self.client.api
        host_config = api.create_host_config(
            network_mode="none",
            cap_drop=["ALL"],
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
        )
        try:
            cid = api.create_container(
                self.image,
                # PID 1 is docker-init; its child runs as `nobody`, which uid 1000 cannot signal,
                # so an agent's `kill -9 -1` kills its own processes but not the container.
                command=["sleep", "infinity"],
                user="65534:65534",
                working_dir="/workspace",
                labels=cleanup.labels(cfg.label),
                host_config=host_config,
                network_disabled=True,
            )["Id"]
        except docker.errors.ImageNotFound as exc:
            raise SandboxInfraError(f"workspace image {self.image} vanished: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise SandboxInfraError(f"creating a workspace container failed: {exc}") from exc
        cleanup.register(api, cid)
        try:
            api.start(cid)
            return Workspace(
                self.client,
                cid,
                timeout_s=cfg.timeout_s,
                max_output_bytes=cfg.max_output_bytes,
                on_close=self._release,
            )
        except Exception as exc:
            cleanup.remove(api, cid)
            if isinstance(exc, SandboxInfraError):
                raise
            raise SandboxInfraError(f"starting a workspace container failed: {exc}") from exc

    def _release(self, ws: Workspace) -> None:
        # On failure the atexit/start-up sweeps get it; never mask the caller's exception.
        with contextlib.suppress(Exception):
            cleanup.remove(self.client.api, ws.container_id)

    def acquire(self) -> Workspace:
        if self._closed:
            raise SandboxInfraError("sandbox resource is closed")
        with self._pool_lock:
            ws = self._pool.popleft() if self._pool else None
        if self.cfg.warm_pool_size > 0:
            self._refill.set()
        if ws is not None:
            return ws
        return self._create()

    # ------------------------------------------------------------------ warm pool

    def _fill_loop(self) -> None:
        while not self._closed:
            self._refill.wait()
            self._refill.clear()
            while not self._closed:
                with self._pool_lock:
                    if len(self._pool) >= self.cfg.warm_pool_size:
                        break
                try:
                    ws = self._create()
                except Exception:
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
        return {"image": self.image, "label": self.cfg.label, "pool": self.pool_size()}


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
    label: str = Field(default=cleanup.DEFAULT_LABEL, description="Label on every container.")

    _manager: _Manager | None = PrivateAttr(default=None)
    _manager_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.manager()

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

    def close(self) -> None:
        """Remove pooled containers. Workspaces still in use are removed by their owners."""
        with self._manager_lock:
            if self._manager is not None:
                self._manager.close()
                self._manager = None
