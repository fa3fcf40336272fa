#!/usr/bin/env python3
"""In-container tool server: one long-lived supervisor per workspace container.

Copied into the workspace image as /opt/ise/toolserver.py and started through ONE attached
`docker exec`. It speaks line-delimited JSON over that exec's stdin/stdout: one request per
line in, one response per line out, strictly in order. It needs no network and no port.

Request:  {"id": 1, "tool": "exec", "args": {"cmd": "ls"}}
Response: {"id", "ok", "error_kind", "error", "exit_code", "stdout", "stderr",
           "stdout_truncated", "stderr_truncated", "duration_ms", "timed_out", ...extras}

error_kind is null on success, "tool" for errors the agent caused (bad args, path outside
/workspace, missing file, nonzero exit), and "infra" for failures of this server itself.

Stdlib only, Python 3.11 (Debian bookworm). This file is also imported by the host-side tests,
so keep import-time side effects out of module scope.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time

VERSION = 1
WORKSPACE = "/workspace"
JOBS_DIR = "/tmp/.ise-jobs"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_OUTPUT = 64 * 1024
KILL_GRACE_S = 0.2  # SIGTERM first, then SIGKILL for processes that ignore it
PIPE_GRACE_S = 0.05  # how long to keep draining pipes after the shell exits
READ_CHUNK = 65536
PROTOCOL_CHUNK = 1 << 20
MAX_SPAWN_REQUEST = 160 * 1024  # fits the default socket buffer (wmem_default, 208 KiB)
AGENT_UID = AGENT_GID = 1000
PYTHON = "/usr/bin/python3"
# openat2(2): the same number on every architecture (syscalls added since 5.x are unified).
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_PR_SET_DUMPABLE = 4
# Run in the verifier's own process: agent code the verifier starts (a test suite, a fixed
# script) runs as the same uid, so it must not be able to ptrace this process or open its
# fds. Source comes on stdin; -P keeps the workspace off sys.path.
_VERIFY_WRAPPER = """\
import ctypes, os, sys
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
source = sys.stdin.buffer.read()
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
sys.argv = ["verify.py"]
exec(compile(source, "verify.py", "exec"), {"__name__": "__main__", "__file__": "verify.py"})
"""


class ToolError(Exception):
    """An error caused by the agent's call; reported as error_kind="tool"."""


# --------------------------------------------------------------------------- helpers


def _result(**extra):
    res = {
        "ok": True,
        "error_kind": None,
        "error": None,
        "exit_code": None,
        "stdout": "",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
        "timed_out": False,
    }
    res.update(extra)
    return res


def _decode(data: bytes):
    """Decode output safely. Returns (text, is_binary); never raises."""
    binary = b"\x00" in data
    try:
        return data.decode("utf-8"), binary
    except UnicodeDecodeError as exc:
        # A cap can cut a multi-byte character at the very end; that alone is not "binary".
        if exc.reason == "unexpected end of data" and not binary:
            return data[: exc.start].decode("utf-8", errors="replace"), False
        return data.decode("utf-8", errors="replace"), True


def _oom_kills() -> int:
    """OOM kills so far in this container's memory cgroup (v1 or v2); -1 if unknown."""
    for path, key in (
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
    ):
        try:
            with open(path) as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return -1


def _deprioritise(pid: int) -> None:
    """Make the agent's processes, not this server, the OOM killer's first choice.

    Raising oom_score_adj needs no capability, and children inherit it. Done from the parent
    (not a preexec_fn) so that subprocess can keep using the fast vfork path.
    """
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def _kill_tree(pid: int, grace: float) -> None:
    """Kill the process group and session led by `pid` (SIGTERM, then SIGKILL).

    Commands start in their own session, so this reaches background children, pipelines and
    fork bombs. Processes that call setsid() themselves leave it: ToolServer._reap gets those.
    """
    if grace > 0 and _signal_group(pid, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _members(pid):
            time.sleep(0.01)
    for _ in range(200):  # a fork bomb may fork between two sweeps
        if not _signal_group(pid, signal.SIGKILL):
            return
        time.sleep(0.002)


def _stat(pid: int | str) -> tuple[str, int, int, int] | None:
    """(state, pgrp, session, start time) of a process; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            line = fh.read()
    except OSError:
        return None
    # After the command name: state ppid pgrp session ...; start time is field 22 overall.
    fields = line[line.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19])


def _members(sid: int) -> list[int]:
    """PIDs whose process group or session is `sid` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        info = _stat(entry) if entry.isdigit() else None
        if info and info[0] not in ("Z", "X") and sid in (info[1], info[2]):
            found.append(int(entry))
    return found


def _signal_group(pid: int, sig: int) -> bool:
    """Signal every live member of the group/session; True if any was found.

    killpg's own return value is not used: an unreaped zombie leader keeps it "succeeding".
    """
    with contextlib.suppress(OSError):
        os.killpg(pid, sig)
    members = _members(pid)
    for member in members:
        with contextlib.suppress(OSError):
            os.kill(member, sig)
    return bool(members)


def _exit_code(returncode):
    """Shell convention: killed by signal N -> 128+N."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _set_dumpable(flag: bool) -> None:
    with contextlib.suppress(Exception):
        _libc().prctl(_PR_SET_DUMPABLE, int(flag), 0, 0, 0)


def separate_from_agent() -> bool:
    """Leave uid 0 for real uid 0 / effective uid 1000, with every capability dropped.

    Started as root (with only CAP_SETUID and CAP_SETGID, see resource.py), the server keeps
    root as its real and saved uid: agent processes (uid 1000 through and through) can then
    neither signal it, nor ptrace it, nor open /proc/<pid>/fd/*, so no command can write a
    forged response into the protocol pipe. Files are still created as the agent (fsuid
    follows euid), and children become uid 1000 without privilege (setreuid to the euid).
    Returns False when not started as root: no separation.
    """
    _set_dumpable(False)
    if os.getuid() != 0:
        return False
    os.setgroups([AGENT_GID])
    os.setresgid(AGENT_GID, AGENT_GID, AGENT_GID)
    os.setresuid(0, AGENT_UID, 0)
    _drop_capabilities()
    _set_dumpable(False)  # a uid change resets it
    return True


def _drop_capabilities() -> None:
    """Empty the permitted set too, so even euid 0 would bring no capability back."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if _libc().capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


class _How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _openat2(dirfd: int, path: str, flags: int, mode: int = 0o644) -> int:
    """openat2(2) with RESOLVE_BENEATH: the kernel resolves `path` (symlinks and `..`
    included) and refuses, atomically, any step that leaves `dirfd` (EXDEV)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    mode = mode if flags & os.O_CREAT else 0  # EINVAL otherwise
    how = _How(flags | os.O_CLOEXEC, mode, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = libc.syscall(
        ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), os.fsencode(path),
        ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
    )  # fmt: skip
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _openat2_works(root: str) -> bool:
    try:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        os.close(_openat2(fd, ".", os.O_PATH | os.O_DIRECTORY))
        return True
    except (OSError, AttributeError):  # ENOSYS (old kernel), EPERM (seccomp profile)
        return False
    finally:
        os.close(fd)


def _procs(uid: int) -> dict[int, tuple[int, str, int, int]]:
    """Live processes of `uid` other than this one: pid -> (start time, state, pgrp, sid)."""
    found, me = {}, os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
        except OSError:
            continue
        info = _stat(entry)
        if info and info[0] not in ("Z", "X"):
            state, pgrp, sid, start = info
            found[int(entry)] = (start, state, pgrp, sid)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _json_fit(text: str, budget: int) -> str:
    """The longest prefix of `text` whose JSON (ASCII-escaped) form fits in `budget` chars.

    Replacement characters in decoded binary output cost 6 chars each (\\ufffd): capping on
    raw bytes alone would let a 64 KiB cap return ~6x that."""
    if len(json.dumps(text)) - 2 <= budget:
        return text
    cost = 0
    for i, ch in enumerate(text):
        o = ord(ch)
        if 0x20 <= o < 0x7F:
            cost += 2 if ch in '"\\' else 1
        elif ch in "\n\r\t\b\f":
            cost += 2
        else:
            cost += 12 if o > 0xFFFF else 6
        if cost > budget:
            return text[:i]
    return text


def _line_range(fh, first: int, last: int | None, cap: int) -> tuple[bytes, int]:
    """Lines first..last (1-based, inclusive; None: to the end) of a binary file, at most
    cap + 1 bytes of them, and the file's line count. Streams in chunks: a huge file, or one
    huge line, is never held in memory."""
    kept, size, line, at_line_start = [], 0, 1, True
    while chunk := fh.readline(64 * 1024):
        at_line_start = False
        if line >= first and (last is None or line <= last) and size <= cap:
            kept.append(chunk[: cap + 1 - size])
            size += len(kept[-1])
        if chunk.endswith(b"\n"):
            line += 1
            at_line_start = True
    total = line - 1 if at_line_start else line
    return b"".join(kept), total


class _Capped:
    """Keeps the first `cap` bytes of a stream and counts (then discards) the rest."""

    def __init__(self, cap: int):
        self.cap = cap
        self.buf = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]

    def fields(self, name: str) -> dict:
        text, binary = _decode(bytes(self.buf))
        fitted = _json_fit(text, self.cap) if binary else text
        return {
            name: fitted,
            f"{name}_truncated": self.total > len(self.buf) or len(fitted) < len(text),
            f"{name}_bytes": self.total,
            f"{name}_binary": binary,
        }


class _Feed:
    """A command's stdin, written as the command reads it (never blocking the server)."""

    def __init__(self, pipe, data: bytes):
        self.pipe, self.data, self.written = pipe, memoryview(data), 0
        self.open = True

    def start(self, sel) -> bool:
        if not self.data:
            self.close(sel)
            return False
        os.set_blocking(self.pipe.fileno(), False)
        sel.register(self.pipe, selectors.EVENT_WRITE)
        return True

    def write(self, sel) -> None:
        try:
            self.written += os.write(self.pipe.fileno(), self.data[self.written :][:READ_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the command closed its stdin or exited
            self.close(sel)
            return
        if self.written >= len(self.data):
            self.close(sel)

    def close(self, sel) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(self.pipe)
            with contextlib.suppress(OSError):
                self.pipe.close()


class SpawnerLost(Exception):
    """The helper that starts commands died (a process in the workspace killed it)."""


class _Child:
    """The part of Popen the server uses, for a process the spawner started."""

    def __init__(self, spawner, pid, stdin, stdout, stderr):
        self.spawner, self.pid = spawner, pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            self.spawner.drain()
            self.returncode = self.spawner.exits.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            self.returncode = self.spawner.wait(self.pid, timeout)
        return self.returncode


class Spawner:
    """The server's handle on its helper: a uid-1000 process that starts commands.

    The server cannot give a child uid 1000 without fork()ing itself first (vfork is off
    when the child changes uid), and forking a Python process costs milliseconds in a VM.
    The helper already is uid 1000 through and through, so it starts commands with vfork.
    It holds no pipe to the host (its stdio is /dev/null, one socketpair to the server),
    marks itself non-dumpable, and only ever reports pids and exit statuses. A process that
    kills it loses its own call: every agent process is killed before a new one starts, so
    nothing can attach to the new helper in the moment before it is non-dumpable.
    """

    def __init__(self, uid: int):
        self.uid = uid
        self.exits: dict[int, int] = {}
        self.outstanding: set[int] = set()
        self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--spawner", str(theirs.fileno())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()], user=self.uid, start_new_session=True,
        )  # fmt: skip
        theirs.close()
        self.sock = ours
        self.pid = self.proc.pid

    def restart(self, kill_agent) -> None:
        """After the helper died: kill every agent process, then start a fresh helper."""
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        kill_agent()
        for pid in self.outstanding:  # they were killed with everything else
            self.exits.setdefault(pid, -signal.SIGKILL)
        self.outstanding.clear()
        self._start()

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            msg = self.sock.recv(1 << 16)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError as exc:
            raise SpawnerLost(str(exc)) from None
        if not msg:
            raise SpawnerLost("the spawner's socket closed")
        event = json.loads(msg)
        if "exit" in event:
            self.exits[event["exit"]] = event["code"]
            self.outstanding.discard(event["exit"])
        return event

    def unstop(self) -> None:
        """A process in the workspace may SIGSTOP the helper (same uid): resume it."""
        info = _stat(self.pid)
        if info and info[0] in ("T", "t"):
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGCONT)

    def drain(self) -> None:
        while self._recv(0) is not None:
            pass

    def wait(self, pid: int, timeout=None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exits:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(pid), timeout)
            if self._recv(0.5 if left is None else min(left, 0.5)) is None:
                self.unstop()
                if self.proc.poll() is not None:
                    raise SpawnerLost("the spawner died")
        return self.exits.pop(pid)

    def spawn(self, argv, cwd, env, stdin, stdout, stderr) -> _Child:
        """Like Popen(..., start_new_session=True); stdin/stdout/stderr: PIPE, DEVNULL or a
        file object."""
        ends, mine, close = [], {}, []
        for name, spec in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if spec == subprocess.PIPE:
                r, w = os.pipe()
                child, own = (r, w) if name == "stdin" else (w, r)
                mine[name] = os.fdopen(own, "wb" if name == "stdin" else "rb", buffering=0)
                close.append(child)
            elif spec == subprocess.DEVNULL:
                child = os.open(os.devnull, os.O_RDWR)
                close.append(child)
            else:
                child = spec.fileno()
            ends.append(child)
        try:
            request = json.dumps({"argv": argv, "cwd": cwd, "env": env}).encode()
            if len(request) > MAX_SPAWN_REQUEST:  # one datagram; the kernel caps each
                raise ToolError(  # argument at 128 KiB anyway (E2BIG)
                    f"command and environment too large ({len(request)} bytes of JSON; "
                    f"limit {MAX_SPAWN_REQUEST})"
                )
            try:
                socket.send_fds(self.sock, [request], ends)
            except OSError as exc:
                raise SpawnerLost(str(exc)) from None
            waited = 0.0
            while True:
                reply = self._recv(0.5)
                if reply is None:
                    self.unstop()
                    waited += 0.5
                    if waited >= 30 or self.proc.poll() is not None:
                        raise SpawnerLost("the spawner did not answer")
                    continue
                if "pid" in reply or "error" in reply:
                    break
            if "error" in reply:
                code, message = reply["error"]
                raise OSError(code, message)
        except BaseException:
            for f in mine.values():
                f.close()
            raise
        finally:
            for fd in close:
                os.close(fd)
        self.exits.pop(reply["pid"], None)  # a recycled pid's old status is not this one's
        self.outstanding.add(reply["pid"])
        return _Child(self, reply["pid"], mine.get("stdin"), mine.get("stdout"), mine.get("stderr"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def spawner_main(fd: int) -> int:
    """The helper's loop (see Spawner): spawn on request, report every exit."""
    _set_dumpable(False)
    sock = socket.socket(fileno=fd)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is not sock:
                proc = key.data
                sel.unregister(key.fileobj)
                os.close(key.fd)
                sock.send(json.dumps({"exit": proc.pid, "code": proc.wait()}).encode())
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(sock, MAX_SPAWN_REQUEST, 3)
            except OSError:
                return 0
            if not msg:
                return 0
            req = json.loads(msg)
            try:
                proc = subprocess.Popen(
                    req["argv"], cwd=req["cwd"], env=req["env"],
                    stdin=fds[0], stdout=fds[1], stderr=fds[2], start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                reply = {"error": [exc.errno or 0, str(exc)]}
            else:
                reply = {"pid": proc.pid}
                pidfd = os.pidfd_open(proc.pid)
                sel.register(pidfd, selectors.EVENT_READ, proc)
            finally:
                for f in fds:
                    os.close(f)
            sock.send(json.dumps(reply).encode())


# --------------------------------------------------------------------------- server


class ToolServer:
    def __init__(self, workspace=WORKSPACE, max_output=DEFAULT_MAX_OUTPUT,
                 default_timeout=DEFAULT_TIMEOUT_S, jobs_dir=JOBS_DIR,
                 child_uid=None):  # fmt: skip
        self.workspace = os.path.realpath(workspace)
        # Set when separate_from_agent() succeeded: children drop to this uid for good.
        self.child_uid = child_uid
        self.agent_uid = os.geteuid()
        # openat2(RESOLVE_BENEATH) where the kernel and seccomp profile allow it; else the
        # realpath check, which a concurrent rename can race (the container still holds).
        self.beneath = _openat2_works(self.workspace)
        self._root_fd = None
        self.spawner = Spawner(child_uid) if child_uid is not None else None
        self.max_output = max_output
        self.default_timeout = default_timeout
        self.jobs_dir = jobs_dir
        self.jobs: dict[str, dict] = {}
        self._next_job = 1
        self.tools = {
            "exec": self.tool_exec,
            "read": self.tool_read,
            "write": self.tool_write,
            "edit": self.tool_edit,
            "apply_patch": self.tool_apply_patch,
            "process": self.tool_process,
            # Host-side helpers (not offered to the agent by the host library).
            "ping": self.tool_ping,
            "untar": self.tool_untar,
            "snapshot": self.tool_snapshot,
            "verify": self.tool_verify,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, request) -> dict:
        start = time.monotonic()
        req_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise ToolError("request must be a JSON object")
            tool = request.get("tool")
            args = request.get("args", {})
            if args is None:
                args = {}
            if not isinstance(tool, str) or tool not in self.tools:
                raise ToolError(f"unknown tool {tool!r}; known: {sorted(self.tools)}")
            if not isinstance(args, dict):
                raise ToolError(f"args must be a JSON object, got {type(args).__name__}")
            res = self.tools[tool](args)
        except ToolError as exc:
            res = _result(ok=False, error_kind="tool", error=str(exc))
        except SpawnerLost as exc:
            self.spawner.restart(self._kill_agent)
            res = _result(
                ok=False, error_kind="tool",
                error=f"a process in the workspace killed the tool server's process spawner "
                f"({exc}); every process in the workspace was killed, files are intact",
                supervisor_restarted=True,
            )  # fmt: skip
        except OSError as exc:
            # EAGAIN from fork (pids limit), ENOSPC, EACCES...: caused by the workspace's own
            # state, so the agent sees it as an ordinary tool error.
            res = _result(ok=False, error_kind="tool", error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in this server, not the agent's fault
            res = _result(ok=False, error_kind="infra", error=f"tool server: {exc!r}")
        res["id"] = req_id
        res["duration_ms"] = round((time.monotonic() - start) * 1000, 3)
        return res

    # ------------------------------------------------------------------ arguments

    @staticmethod
    def _arg(args, name, kind, default=..., *, allow_none=False):
        if name not in args or (args[name] is None and not allow_none):
            if default is ...:
                raise ToolError(f"missing required argument {name!r}")
            return default
        value = args[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ToolError(f"argument {name!r} must be {kind.__name__}")
        return value

    def _path(self, args, name="path") -> str:
        """Lexical + realpath check (for host-chosen paths; file tools use _open)."""
        raw = self._arg(args, name, str)
        if not raw or "\x00" in raw:
            raise ToolError(f"argument {name!r} must be a non-empty path")
        full = os.path.realpath(os.path.join(self.workspace, raw))
        if full != self.workspace and not full.startswith(self.workspace + os.sep):
            raise ToolError(f"path {raw!r} is outside {self.workspace}")
        return full

    def _rel(self, raw: str) -> str:
        """The path relative to the workspace. A lexical escape is refused here (even where
        a missing directory would make the kernel say ENOENT); symlinks are the kernel's."""
        if os.path.isabs(raw):
            norm = os.path.normpath(raw)
            if norm != self.workspace and not norm.startswith(self.workspace + os.sep):
                raise ToolError(f"path {raw!r} is outside {self.workspace}")
            return os.path.relpath(norm, self.workspace)
        if os.path.normpath(raw).split(os.sep)[0] == "..":
            raise ToolError(f"path {raw!r} is outside {self.workspace}")
        return raw

    def _root(self) -> int:
        if self._root_fd is None:
            self._root_fd = os.open(self.workspace, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._root_fd

    def _open(self, raw: str, flags: int, mode: int = 0o644) -> int:
        """Open a path under the workspace without following anything out of it, race-free
        when openat2 is available. Errors become ToolErrors naming the agent's path."""
        if not raw or "\x00" in raw:
            raise ToolError("argument 'path' must be a non-empty path")
        try:
            if self.beneath:
                return _openat2(self._root(), self._rel(raw), flags, mode)
            return os.open(self._path({"path": raw}), flags | os.O_CLOEXEC, mode)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise ToolError(f"path {raw!r} is outside {self.workspace}") from None
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise ToolError(f"no such file: {raw!r}") from None
            if exc.errno == errno.EISDIR:
                raise ToolError(f"{raw!r} is a directory") from None
            if exc.errno == errno.ELOOP:
                raise ToolError(f"{raw!r}: too many levels of symbolic links") from None
            raise

    def _open_file(self, raw: str, flags: int, mode: int = 0o644) -> int:
        """_open for a regular file (O_NONBLOCK: a FIFO must not hang the server)."""
        fd = self._open(raw, flags | os.O_NONBLOCK, mode)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ToolError(f"{raw!r} is {kind}")
        os.set_blocking(fd, True)
        return fd

    def _where(self, fd: int) -> str:
        """The workspace-relative path an open fd really refers to."""
        return os.path.relpath(os.readlink(f"/proc/self/fd/{fd}"), self.workspace)

    def _makedirs(self, raw_dir: str) -> None:
        rel = self._rel(raw_dir) if raw_dir else "."
        if not self.beneath:
            os.makedirs(self._path({"path": rel}), exist_ok=True)
            return
        parts = [part for part in rel.split("/") if part not in ("", ".")]
        for i, part in enumerate(parts):
            parent = self._open("/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY)
            try:
                os.mkdir(part, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
            finally:
                os.close(parent)

    def _cwd(self, args) -> str:
        """The working directory for a command. Checked when the call starts; a command can
        `cd` anywhere in the container anyway, so this is a guard against mistakes only."""
        raw = self._arg(args, "cwd", str, ".")
        try:
            fd = self._open(raw, os.O_PATH | os.O_DIRECTORY)
        except ToolError as exc:
            if "outside" in str(exc):
                raise
            raise ToolError(f"cwd {raw!r} is not a directory") from None
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)

    def _cap(self, args) -> int:
        cap = self._arg(args, "max_output_bytes", int, self.max_output)
        if cap < 0:
            raise ToolError("max_output_bytes must be >= 0")
        return cap

    def _timeout(self, args) -> float:
        timeout = self._arg(args, "timeout_s", float, self.default_timeout)
        if not 0 < timeout <= 24 * 3600:
            raise ToolError("timeout_s must be in (0, 86400]")
        return timeout

    def _env(self, args):
        env = dict(os.environ)
        extra = self._arg(args, "env", dict, {})
        for key, value in extra.items():
            if not isinstance(value, str) or not key or "=" in key:
                raise ToolError("env must map names to strings")
            env[key] = value
        return env

    # ------------------------------------------------------------------ tools

    def tool_ping(self, args):
        return _result(version=VERSION, oom_kills=_oom_kills(), jobs=len(self.jobs),
                       separated=self.child_uid is not None, beneath=self.beneath)  # fmt: skip

    def tool_verify(self, args):
        """Host helper: run a task's verifier (Python source) against a still workspace.

        Every agent process is stopped (SIGSTOP) first and resumed afterwards, so nothing the
        agent left running can change files, the verifier or its verdict while it runs; they
        still show in /proc, so "is the service still running?" is answered truthfully. The
        verifier runs with this server's fixed environment, off the workspace's sys.path,
        non-dumpable; the verdict is its exit status, collected here, never a file."""
        source = self._arg(args, "source", str)
        timeout = self._timeout(args)
        cwd = self._cwd(args)
        frozen = self._freeze()
        try:
            argv = [sys.executable, "-P", "-s", "-c", _VERIFY_WRAPPER]
            # No user site for the Pythons it starts either: ~/.local is the agent's to fill.
            env = {**os.environ, "PYTHONNOUSERSITE": "1"}
            res = self._run(argv, cwd, env, source.encode(), self.max_output, timeout)
        finally:
            self._thaw(frozen)
        res.update(verdict="pass" if res["ok"] else "fail", frozen=len(frozen))
        return res

    def tool_exec(self, args):
        cmd = self._arg(args, "cmd", str)
        timeout = self._timeout(args)
        cap = self._cap(args)
        login = self._arg(args, "login", bool, False)
        stdin_text = self._arg(args, "stdin", str, None)
        cwd = self._cwd(args)
        stdin = stdin_text.encode(errors="surrogateescape") if stdin_text is not None else None
        argv = ["bash", "-lc" if login else "-c", cmd]
        return self._run(argv, cwd, self._env(args), stdin, cap, timeout)

    def _spawn(self, argv, cwd, env, stdin, stdout, stderr):
        if self.spawner is not None:
            proc = self.spawner.spawn(argv, cwd, env, stdin, stdout, stderr)
        else:  # not separated (tests on a host): this process is the agent's uid already
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                start_new_session=True,
            )  # fmt: skip
        _deprioritise(proc.pid)
        return proc

    def _kill_agent(self) -> None:
        """SIGKILL every agent process (before a new spawner starts)."""
        for _ in range(200):
            procs = [pid for pid in _procs(self.agent_uid) if pid != self.spawner.proc.pid]
            if not procs:
                return
            for pid in procs:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def _run(self, argv, cwd, env, stdin: bytes | None, cap: int, timeout: float) -> dict:
        """Run one command to completion; nothing it started outlives it (see _reap)."""
        before = self._snapshot_procs()
        oom_before = _oom_kills()
        proc = self._spawn(
            argv, cwd, env, subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            subprocess.PIPE, subprocess.PIPE,
        )  # fmt: skip
        out, err = _Capped(cap), _Capped(cap)
        feed = _Feed(proc.stdin, stdin) if stdin is not None else None
        timed_out = self._pump(proc, {proc.stdout: out, proc.stderr: err}, timeout, feed)
        if timed_out:
            _kill_tree(proc.pid, KILL_GRACE_S)
        returncode = proc.wait()
        # Each exec is self-contained: whatever it left running in its session is killed, so a
        # fork bomb or a stray `sleep &` cannot outlive the call. Use `process` for daemons.
        _kill_tree(proc.pid, 0)
        escaped = self._reap(before)
        oom = _oom_kills() > oom_before >= 0
        res = _result(
            ok=not timed_out and returncode == 0,
            exit_code=_exit_code(returncode),
            timed_out=timed_out,
            oom_killed=oom,
            **out.fields("stdout"),
            **err.fields("stderr"),
        )
        if feed is not None:
            res.update(stdin_bytes=len(stdin), stdin_truncated=feed.written < len(stdin))
        if escaped:
            res["escaped_killed"] = escaped
        if returncode < 0:
            try:
                res["signal"] = signal.Signals(-returncode).name
            except ValueError:
                res["signal"] = f"SIG{-returncode}"
        if timed_out:
            res["error_kind"] = "tool"
            res["error"] = f"command timed out after {timeout:g}s; its process group was killed"
        elif returncode != 0:
            res["error_kind"] = "tool"
            res["error"] = f"command exited with code {res['exit_code']}"
            if oom:
                res["error"] += " (killed by the out-of-memory killer: memory limit reached)"
        return res

    def _capture(self, argv, data: bytes, cwd: str, timeout: float):
        """A helper command of our own (patch, tar): (exit code, stdout, stderr)."""
        proc = self._spawn(argv, cwd, dict(os.environ), subprocess.PIPE, subprocess.PIPE,
                           subprocess.PIPE)  # fmt: skip
        out, err = _Capped(self.max_output), _Capped(self.max_output)
        if self._pump(proc, {proc.stdout: out, proc.stderr: err}, timeout, _Feed(proc.stdin, data)):
            _kill_tree(proc.pid, 0)
        return _exit_code(proc.wait()), out, err

    # ------------------------------------------------------------------ process boundary

    def _agent_procs(self) -> dict[int, tuple[int, str, int, int]]:
        # Only where this server is separated from the agent (in the workspace container,
        # where every uid-1000 process is the agent's); on a host the uid is a person's.
        if self.spawner is None:
            return {}
        procs = _procs(self.agent_uid)
        procs.pop(self.spawner.pid, None)
        return procs

    def _snapshot_procs(self) -> set[tuple[int, int]]:
        return {(pid, info[0]) for pid, info in self._agent_procs().items()}

    def _job_sessions(self) -> set[int]:
        return {j["proc"].pid for j in self.jobs.values() if j["proc"].poll() is None}

    def _reap(self, before: set[tuple[int, int]]) -> list[dict]:
        """Kill processes a call started that left its session (`setsid cmd &`).

        A call's boundary is everything it started: its session, and whatever appeared
        during the call outside it, except in the sessions of `process` jobs. Returns what
        was killed, so the observation says so."""
        jobs = self._job_sessions()
        killed = []
        for _ in range(50):
            new = {
                pid: info
                for pid, info in self._agent_procs().items()
                if (pid, info[0]) not in before and info[3] not in jobs and info[2] not in jobs
            }
            if not new:
                break
            for pid in new:
                if len(killed) < 20 and all(k["pid"] != pid for k in killed):
                    killed.append({"pid": pid, "cmd": _cmdline(pid)[:200]})
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        return killed

    def survivors(self) -> list[dict]:
        """Agent processes outside every live job's session (left a job's session, or
        predate this server): they run on until killed or the container goes."""
        jobs = self._job_sessions()
        return [
            {"pid": pid, "cmd": _cmdline(pid)[:200], "state": info[1]}
            for pid, info in sorted(self._agent_procs().items())
            if info[3] not in jobs and info[2] not in jobs
        ]

    def _freeze(self) -> list[tuple[int, int]]:
        """SIGSTOP every agent process (the verifier then judges a still workspace)."""
        stopped: dict[int, int] = {}  # pid -> start time (guards against pid reuse)
        for _ in range(200):  # a process may fork between two sweeps
            todo = {pid: info[0] for pid, info in self._agent_procs().items()
                    if info[1] not in ("T", "t")}  # fmt: skip
            if not todo:
                break
            for pid, start in todo.items():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.setdefault(pid, start)
            time.sleep(0.002)
        return list(stopped.items())

    def _thaw(self, stopped: list[tuple[int, int]]) -> None:
        live = self._agent_procs()
        for pid, start in stopped:
            if pid in live and live[pid][0] == start:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)

    @staticmethod
    def _pump(proc, streams, timeout, feed=None) -> bool:
        """Read both pipes (and feed stdin) until EOF or the deadline. True on timeout.

        A pidfd in the selector wakes us the moment the shell exits, so a background child that
        keeps a pipe open (`sleep 100 &`) costs PIPE_GRACE_S, not a polling interval. stdin is
        written as the command reads it, any size; a command that stops reading gets EPIPE
        and the result says how much it took (stdin_truncated).
        """
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        open_pipes = set(streams)
        for pipe in streams:
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe, selectors.EVENT_READ)
        if feed is not None and not feed.start(sel):
            feed = None
        pidfd = None
        if isinstance(proc, _Child):  # the spawner reports the exit on its socket
            sel.register(proc.spawner.sock, selectors.EVENT_READ)
        else:
            try:
                pidfd = os.pidfd_open(proc.pid)
                sel.register(pidfd, selectors.EVENT_READ)
            except (AttributeError, OSError):  # old kernel or seccomp profile: poll instead
                pidfd = None
        exited_at = None
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return proc.poll() is None
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                    if feed is not None:
                        feed.close(sel)
                if exited_at is not None and (
                    not open_pipes or now - exited_at > PIPE_GRACE_S
                ):  # done; or a background child holds a pipe open after the shell exited
                    return False
                wait = deadline - now
                if isinstance(proc, _Child):  # its exit comes from the spawner: keep it going
                    proc.spawner.unstop()
                    wait = min(wait, 0.5)
                if exited_at is not None:
                    wait = min(wait, PIPE_GRACE_S - (now - exited_at))
                elif pidfd is None and not isinstance(proc, _Child):
                    wait = min(wait, 0.02)
                for key, _ in sel.select(max(wait, 0.0)):
                    if key.fileobj == pidfd:
                        sel.unregister(pidfd)  # level-triggered; poll() above records the exit
                        continue
                    if isinstance(proc, _Child) and key.fileobj is proc.spawner.sock:
                        proc.poll()
                        if proc.returncode is not None:
                            sel.unregister(key.fileobj)
                        continue
                    if feed is not None and key.fileobj is feed.pipe:
                        feed.write(sel)
                        continue
                    try:
                        data = os.read(key.fileobj.fileno(), READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if data:
                        streams[key.fileobj].add(data)
                    else:
                        sel.unregister(key.fileobj)
                        open_pipes.discard(key.fileobj)
        finally:
            if feed is not None:
                feed.close(sel)
            sel.close()
            if pidfd is not None:
                os.close(pidfd)
            for pipe in streams:
                pipe.close()

    def tool_read(self, args):
        import base64

        raw = self._arg(args, "path", str)
        cap = self._cap(args)
        encoding = self._arg(args, "encoding", str, "utf-8")
        start = self._arg(args, "start_line", int, None)
        end = self._arg(args, "end_line", int, None)
        fd = self._open_file(raw, os.O_RDONLY)
        extra = {"path": self._where(fd)}
        with os.fdopen(fd, "rb") as fh:
            if start is None and end is None:
                data = fh.read(cap + 1)
            else:
                first = 1 if start is None else start
                if first < 1 or (end is not None and end < first - 1):
                    raise ToolError("need 1 <= start_line <= end_line + 1")
                data, total = _line_range(fh, first, end, cap)
                last = total if end is None else min(end, total)
                extra.update(total_lines=total, start_line=first, end_line=last)
        truncated = len(data) > cap
        data = data[:cap]
        if encoding == "base64":
            text, binary = base64.b64encode(data).decode(), True
        elif encoding == "utf-8":
            text, binary = _decode(data)
            if binary:
                fitted = _json_fit(text, cap)
                truncated, text = truncated or len(fitted) < len(text), fitted
        else:
            raise ToolError("encoding must be 'utf-8' or 'base64'")
        return _result(
            exit_code=0, stdout=text, stdout_truncated=truncated, stdout_binary=binary, **extra
        )

    def tool_write(self, args):
        import base64

        raw = self._arg(args, "path", str)
        content = self._arg(args, "content", str)
        encoding = self._arg(args, "encoding", str, "utf-8")
        append = self._arg(args, "append", bool, False)
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except ValueError as exc:
                raise ToolError(f"content is not valid base64: {exc}") from None
        elif encoding == "utf-8":
            data = content.encode()
        else:
            raise ToolError("encoding must be 'utf-8' or 'base64'")
        self._makedirs(os.path.dirname(raw))
        mode = os.O_APPEND if append else os.O_TRUNC
        fd = self._open_file(raw, os.O_WRONLY | os.O_CREAT | mode)
        with os.fdopen(fd, "wb") as fh:
            where = self._where(fd)
            fh.write(data)
        return _result(exit_code=0, path=where, bytes=len(data))

    def tool_edit(self, args):
        raw = self._arg(args, "path", str)
        old = self._arg(args, "old", str)
        new = self._arg(args, "new", str)
        replace_all = self._arg(args, "replace_all", bool, False)
        if not old:
            raise ToolError("argument 'old' must be a non-empty string")
        with os.fdopen(self._open_file(raw, os.O_RDONLY), "rb") as fh:
            where = self._where(fh.fileno())
            text = fh.read().decode("utf-8", errors="surrogateescape")
        count = text.count(old)
        if count == 0:
            raise ToolError(f"'old' string not found in {args['path']!r}; nothing changed")
        if count > 1 and not replace_all:
            raise ToolError(
                f"'old' string is ambiguous: {count} matches in {args['path']!r}; add context "
                "to make it unique or pass replace_all=true; nothing changed"
            )
        text = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        with os.fdopen(self._open_file(where, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
            fh.write(text.encode("utf-8", errors="surrogateescape"))
        return _result(exit_code=0, path=where, replacements=count)

    def tool_apply_patch(self, args):
        patch = self._arg(args, "patch", str)
        strip = self._arg(args, "strip", int, None)
        cwd = self._cwd(args)
        import re

        data = patch.encode()
        headers = re.findall(rb"^(?:---|\+\+\+) (\S+)", data, re.M)
        names = [n for n in headers if n != b"/dev/null"]
        if not names:
            raise ToolError("patch contains no '---'/'+++' file headers")
        for name in names:
            if name.startswith(b"/") or b".." in name.split(b"/"):
                raise ToolError(f"patch touches unsafe path {name.decode(errors='replace')!r}")
        if strip is None:  # git-style a/ b/ prefixes
            strip = 1 if all(n.startswith((b"a/", b"b/")) for n in names) else 0
        base = ["patch", f"-p{strip}", "--batch", "--forward", "--no-backup-if-mismatch",
                "--reject-file=-", "--directory", cwd]  # fmt: skip
        # Dry run first, so a patch that fails part-way changes nothing.
        for extra in (["--dry-run"], []):
            code, out, err = self._capture(base + extra, data, cwd, 60)
            if code != 0:
                break
        res = _result(
            ok=code == 0, exit_code=code, applied=code == 0,
            **out.fields("stdout"), **err.fields("stderr"),
        )  # fmt: skip
        if code != 0:
            res["error_kind"] = "tool"
            res["error"] = "patch does not apply; nothing changed"
        return res

    # ------------------------------------------------------------------ process

    def tool_process(self, args):
        action = self._arg(args, "action", str)
        if action == "start":
            return self._job_start(args)
        if action == "list":
            jobs = [self._job_state(j) for j in self.jobs.values()]
            return _result(exit_code=0, jobs=jobs, survivors=self.survivors())
        job = self.jobs.get(self._arg(args, "job", str))
        if job is None:
            raise ToolError(f"unknown job {args.get('job')!r}")
        if action == "poll":
            return _result(exit_code=0, **self._job_state(job))
        if action == "read":
            return self._job_read(job, args)
        if action == "kill":
            if job["proc"].poll() is None:
                _kill_tree(job["proc"].pid, KILL_GRACE_S)
                job["proc"].wait()
            return _result(exit_code=0, **self._job_state(job))
        raise ToolError(f"unknown action {action!r}; use start, poll, read, kill or list")

    def _job_start(self, args):
        cmd = self._arg(args, "cmd", str)
        cwd = self._cwd(args)
        os.makedirs(self.jobs_dir, exist_ok=True)
        job_id = f"job{self._next_job}"
        self._next_job += 1
        files = {s: os.path.join(self.jobs_dir, f"{job_id}.{s}") for s in ("stdout", "stderr")}
        with open(files["stdout"], "wb") as out, open(files["stderr"], "wb") as err:
            proc = self._spawn(["bash", "-c", cmd], cwd, self._env(args), subprocess.DEVNULL,
                               out, err)  # fmt: skip
        self.jobs[job_id] = {"id": job_id, "proc": proc, "cmd": cmd, "files": files}
        return _result(exit_code=0, **self._job_state(self.jobs[job_id]))

    @staticmethod
    def _job_state(job) -> dict:
        code = job["proc"].poll()
        return {
            "job": job["id"],
            "pid": job["proc"].pid,
            "cmd": job["cmd"],
            "running": code is None,
            "job_exit_code": _exit_code(code),
        }

    def _job_read(self, job, args):
        cap = self._cap(args)
        res = _result(exit_code=0, **self._job_state(job))
        for stream in ("stdout", "stderr"):
            offset = self._arg(args, f"{stream}_offset", int, 0)
            try:
                with open(job["files"][stream], "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    fh.seek(max(0, offset))
                    data = fh.read(cap + 1)
            except FileNotFoundError:
                data, size = b"", 0
            text, binary = _decode(data[:cap])
            res[stream] = text
            res[f"{stream}_truncated"] = len(data) > cap
            res[f"{stream}_binary"] = binary
            res[f"{stream}_next_offset"] = max(0, offset) + min(len(data), cap)
            res[f"{stream}_size"] = size
        return res

    # ------------------------------------------------------------------ host helpers

    def tool_untar(self, args):
        import base64

        try:
            data = base64.b64decode(self._arg(args, "data_b64", str), validate=True)
        except ValueError as exc:
            raise ToolError(f"data_b64 is not valid base64: {exc}") from None
        argv = ["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", self.workspace]
        code, _, err = self._capture(argv, data, self.workspace, 120)
        res = _result(ok=code == 0, exit_code=code, **err.fields("stderr"))
        if code != 0:
            res.update(error_kind="tool", error="tar -x failed")
        return res

    def tool_snapshot(self, args):
        import base64
        import hashlib

        include = self._arg(args, "include_contents", list, [])
        max_files = self._arg(args, "max_files", int, 20000)
        max_content = self._arg(args, "max_content_bytes", int, 1 << 20)
        files, truncated = [], False
        for root, dirs, names in os.walk(self.workspace):
            # os.walk lists a symlink to a directory under dirs and never descends into it:
            # record it as the symlink it is.
            linked = [d for d in dirs if os.path.islink(os.path.join(root, d))]
            dirs[:] = sorted(d for d in dirs if d not in linked)
            for name in sorted(names + linked):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, self.workspace)
                if len(files) >= max_files:
                    truncated = True
                    break
                entry = {"path": rel}
                if os.path.islink(full):
                    entry.update(type="symlink", target=os.readlink(full))
                elif os.path.isfile(full):
                    digest, size = hashlib.sha256(), 0
                    try:
                        with open(full, "rb") as fh:
                            while chunk := fh.read(1 << 20):
                                digest.update(chunk)
                                size += len(chunk)
                        entry.update(type="file", size=size, sha256=digest.hexdigest())
                    except OSError as exc:
                        entry.update(type="file", error=str(exc))
                    entry["mode"] = oct(os.lstat(full).st_mode & 0o7777)
                else:
                    entry["type"] = "other"
                files.append(entry)
        contents = {}
        for rel in include:
            if not isinstance(rel, str):
                raise ToolError("include_contents must be a list of paths")
            try:
                with os.fdopen(self._open_file(rel, os.O_RDONLY), "rb") as fh:
                    data = fh.read(max_content + 1)
            except (ToolError, OSError) as exc:
                contents[rel] = {"error": str(exc)}
                continue
            text, binary = _decode(data[:max_content])
            if binary:
                text = base64.b64encode(data[:max_content]).decode()
            contents[rel] = {
                "content": text,
                "encoding": "base64" if binary else "utf-8",
                "truncated": len(data) > max_content,
            }
        return _result(exit_code=0, files=files, contents=contents, files_truncated=truncated)


# --------------------------------------------------------------------------- main loop


def main(argv=None) -> int:
    # Flags: --workspace DIR --max-output-bytes N --default-timeout S --separate 1
    # (no argparse: start-up time).
    argv = sys.argv[1:] if argv is None else argv
    opts = dict(zip(argv[::2], argv[1::2], strict=False))
    if "--spawner" in opts:
        return spawner_main(int(opts["--spawner"]))
    workspace = opts.get("--workspace", WORKSPACE)
    max_output = int(opts.get("--max-output-bytes", DEFAULT_MAX_OUTPUT))
    default_timeout = float(opts.get("--default-timeout", DEFAULT_TIMEOUT_S))

    # Keep the protocol channel private: children get /dev/null or their own pipes, and a stray
    # print in this process cannot corrupt the JSON stream.
    # Only where the host asks (the workspace container); never on a host, where uid 1000
    # would be a person's.
    separated = opts.get("--separate") == "1" and separate_from_agent()
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    server = ToolServer(workspace, max_output, default_timeout,
                        child_uid=AGENT_UID if separated else None)  # fmt: skip

    def send(obj) -> None:
        # ASCII-only lines: odd file names (surrogate escapes) survive as \\u escapes.
        proto_out.write((json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii"))

    send({"id": None, "event": "ready", "version": VERSION, "pid": os.getpid(),
          "oom_kills": _oom_kills(), "separated": separated,
          "beneath": server.beneath})  # fmt: skip
    # Linear in the input: search only the bytes that arrived since the last search (a 40 MB
    # write is one line of JSON, read in many chunks).
    buf, searched = bytearray(), 0
    while True:
        try:
            chunk = proto_in.read(PROTOCOL_CHUNK)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            break
        if not chunk:
            break
        buf += chunk
        while (nl := buf.find(b"\n", searched)) >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            searched = 0
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                send(_result(ok=False, error_kind="tool", error=f"malformed JSON request: {exc}",
                             id=None, duration_ms=0.0))  # fmt: skip
                continue
            send(server.handle(request))
        searched = len(buf)
    for job in server.jobs.values():
        if job["proc"].poll() is None:
            _kill_tree(job["proc"].pid, 0)
    import shutil

    shutil.rmtree(server.jobs_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
