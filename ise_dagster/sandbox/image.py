"""The workspace image: content-hashed tag, offline build on first use, never a pull."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from ise_dagster.sandbox.result import SandboxInfraError

IMAGE_REPO = "ise-workspace"
BASE_REPO = "ise-base"
TOOLSERVER = Path(__file__).with_name("toolserver.py")
# Build inputs live in the repo's docker/ folder; ISE_SANDBOX_DOCKER_DIR overrides (wheels).
DOCKER_DIR = Path(os.environ.get("ISE_SANDBOX_DOCKER_DIR", Path(__file__).parents[2] / "docker"))
LOCK_PATH = Path(os.environ.get("ISE_SANDBOX_LOCK", "/tmp/ise-sandbox-image.lock"))

Progress = Callable[[str], None]


def _read_inputs() -> dict[str, bytes]:
    files = {
        "Dockerfile": DOCKER_DIR / "Dockerfile",
        "build-base.sh": DOCKER_DIR / "build-base.sh",
        "toolserver.py": TOOLSERVER,
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SandboxInfraError(
            f"image build inputs not found: {missing}; run from a source checkout or set "
            "ISE_SANDBOX_DOCKER_DIR to the repo's docker/ folder"
        )
    return {name: path.read_bytes() for name, path in files.items()}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def base_tag() -> str:
    """Tag of the debootstrapped base; changes when build-base.sh changes."""
    return f"{BASE_REPO}:{_digest(_read_inputs()['build-base.sh'])}"


def image_tag(base_image: str | None = None) -> str:
    """Tag of the workspace image: a hash of every build input (and a non-default base)."""
    inputs = _read_inputs()
    parts = [inputs[k] for k in sorted(inputs)]
    if base_image:
        parts.append(base_image.encode())
    return f"{IMAGE_REPO}:{_digest(*parts)}"


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(
    client: docker.DockerClient, progress: Progress = print, base_image: str | None = None
) -> str:
    """Return the workspace image tag, building it (offline) first if it is missing.

    Never pulls. `base_image` (or $ISE_SANDBOX_BASE_IMAGE) must already be local; by default
    the base is built with debootstrap from Debian's package mirror (docker/build-base.sh).
    """
    base_image = base_image or os.environ.get("ISE_SANDBOX_BASE_IMAGE") or None
    tag = image_tag(base_image)
    if image_exists(client, tag):
        return tag
    # Several processes (pytest workers, Dagster steps) may start at once: build only once.
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(client, tag):
            return tag
        base = base_image or base_tag()
        if not image_exists(client, base):
            if base_image:
                raise SandboxInfraError(
                    f"base image {base_image!r} is not present locally and this code never "
                    "pulls; `docker pull` it yourself or unset ISE_SANDBOX_BASE_IMAGE"
                )
            build_base(base, progress)
        build_workspace_image(client, tag, base, progress)
    return tag


def build_base(tag: str, progress: Progress = print) -> None:
    """Run docker/build-base.sh: debootstrap + docker import (about a minute)."""
    progress(f"[sandbox] base image {tag} missing; building it offline with debootstrap")
    script = DOCKER_DIR / "build-base.sh"
    proc = subprocess.Popen(
        ["bash", str(script), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        progress(line)
    if proc.wait() != 0:
        raise SandboxInfraError(
            f"building the base image failed (exit {proc.returncode}); needs root, debootstrap "
            f"and the Debian mirror. Last output:\n" + "\n".join(tail)
        )


def build_workspace_image(
    client: docker.DockerClient, tag: str, base: str, progress: Progress = print
) -> None:
    """docker build docker/Dockerfile on top of `base`, with pull disabled."""
    progress(f"[sandbox] building workspace image {tag} from {base}")
    inputs = _read_inputs()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name in ("Dockerfile", "toolserver.py"):
            info = tarfile.TarInfo(name)
            info.size = len(inputs[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(inputs[name]))
    context.seek(0)
    stream = client.api.build(
        fileobj=context,
        custom_context=True,
        tag=tag,
        buildargs={"BASE_IMAGE": base},
        pull=False,
        rm=True,
        forcerm=True,
        decode=True,
        labels={"ise.sandbox.image": "1"},
    )
    for chunk in stream:
        if "error" in chunk:
            raise SandboxInfraError(f"docker build failed: {chunk['error']}")
        text = chunk.get("stream", "").rstrip()
        if text:
            progress(f"[sandbox] {text}")
    if not image_exists(client, tag):
        raise SandboxInfraError(f"docker build finished but {tag} is missing")
    progress(f"[sandbox] image ready: {tag}")
