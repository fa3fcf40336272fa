"""Hostile-input and lifecycle tests against the REAL Docker engine.

The session fixture builds the workspace image on first use (about 1-2 minutes with
debootstrap); later runs reuse it. Every test checks that the pipeline keeps going, that the
result records what happened, and that no container with the test label is left behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from ise_dagster.sandbox import SandboxResource, ToolResult, Workspace, sweep
from ise_dagster_tests.helpers import require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LABEL = "ise.sandbox.test"
CONFIG = dict(
    label=LABEL,
    mem_limit="384m",
    pids_limit=128,
    cpus=1.0,
    workspace_size="128m",
    tmp_size="32m",
    timeout_s=20.0,
    max_output_bytes=64 * 1024,
)


def _docker_or_skip():
    return require_docker()


@pytest.fixture(scope="session")
def client():
    return _docker_or_skip()


@pytest.fixture(scope="session")
def sandbox(client):
    res = SandboxResource(**CONFIG)
    res.manager()  # builds the image if missing, sweeps leftovers
    yield res
    res.close()
    assert _ours(client) == [], "containers left behind after the session"


def _ours(client) -> list[str]:
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": LABEL})]


@pytest.fixture
def ws(sandbox, client):
    with sandbox.workspace() as workspace:
        yield workspace
    assert workspace.container_id not in _ours(client), "container not removed"


def ok(ws: Workspace, cmd: str = "echo ok") -> ToolResult:
    """The pipeline keeps running: a plain command works afterwards."""
    res = ws.call("exec", {"cmd": cmd})
    assert res.ok and res.error_kind is None, res
    return res


def count_procs(ws: Workspace) -> int:
    # Exclude the header, ps itself and the shell: what is left was leaked.
    return int(ws.call("exec", {"cmd": "ps -e --no-headers | wc -l"}).stdout)


# --------------------------------------------------------------------------- hardening


def test_container_is_hardened(ws, client):
    attrs = client.api.inspect_container(ws.container_id)
    hc = attrs["HostConfig"]
    assert hc["NetworkMode"] == "none"
    # The two the tool server needs to leave uid 0; agent processes never hold any (below).
    assert hc["CapDrop"] == ["ALL"] and sorted(hc["CapAdd"]) == ["SETGID", "SETUID"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert not any("seccomp" in opt for opt in hc["SecurityOpt"])  # the default profile
    assert hc["Memory"] == hc["MemorySwap"] == 384 * 2**20
    assert hc["PidsLimit"] == 128 and hc["NanoCpus"] == 10**9
    assert hc["Init"] is True and hc["ReadonlyRootfs"] is True and not hc["Privileged"]
    assert "size=128m" in hc["Tmpfs"]["/workspace"]
    assert not attrs["Mounts"], "no bind mounts (and never the docker socket)"
    assert attrs["Config"]["Labels"][LABEL] == "1"
    res = ok(ws, "id -un; cat /proc/self/status | grep -E '^(Cap(Eff|Prm|Inh|Amb)|NoNewPrivs)'")
    assert res.stdout.split("\n")[0] == "agent"
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert f"{caps}:\t0000000000000000" in res.stdout, res.stdout
    assert "NoNewPrivs:\t1" in res.stdout
    # The tool server itself kept no capability either, and root only as real/saved uid.
    res = ok(ws, "grep -E '^(Uid|CapEff|CapPrm)' /proc/$(pgrep -f toolserver.py | head -1)/status")
    assert "CapEff:\t0000000000000000" in res.stdout and "CapPrm:\t0000000000000000" in res.stdout
    assert res.stdout.split("\n")[0].split() == ["Uid:", "0", "1000", "0", "1000"], res.stdout


def test_echo_hi_json(ws):
    res = ok(ws, "echo hi")
    d = res.to_dict()
    assert d["stdout"] == "hi\n" and d["exit_code"] == 0 and d["timed_out"] is False
    assert set(d) >= {"id", "ok", "error_kind", "error", "stderr", "duration_ms"}


# --------------------------------------------------------------------------- hostile input


def test_fork_bomb(sandbox, ws):
    with sandbox.workspace() as bystander:
        res = ws.call("exec", {"cmd": "b(){ b | b & }; b; sleep 30", "timeout_s": 3})
        assert res.timed_out and res.error_kind == "tool"
        ok(bystander)  # another container is unaffected
    res = ws.call("exec", {"cmd": ":(){ :|:& };:", "timeout_s": 3})
    assert res.error_kind in (None, "tool")  # the shell returns at once; leftovers are killed
    assert ws.alive
    ok(ws)
    assert count_procs(ws) <= 7  # init, sleep, tool server, spawner, bash, ps, wc


def test_memory_hog(ws):
    res = ws.call("exec", {"cmd": "python3 -c \"x = b'a' * (1 << 30)\""})
    assert res.exit_code == 137 and res.error_kind == "tool", res
    assert res.extras["oom_killed"] is True and "out-of-memory" in res.error
    assert ws.alive
    ok(ws)


def test_disk_filler(ws):
    res = ws.call("exec", {"cmd": "dd if=/dev/zero of=/workspace/fill bs=1M count=1000"})
    assert res.error_kind == "tool" and "No space left" in res.stderr
    res = ws.call("exec", {"cmd": "dd if=/dev/zero of=/tmp/fill bs=1M count=1000"})
    assert res.error_kind == "tool" and "No space left" in res.stderr
    # Still alive while full; then recovers after cleanup.
    res = ws.call("write", {"path": "more.txt", "content": "x" * 100_000})
    assert res.error_kind == "tool"
    ok(ws, "rm /workspace/fill /tmp/fill && echo freed")
    assert ws.call("write", {"path": "more.txt", "content": "x"}).ok


def test_infinite_loop(ws):
    start = time.monotonic()
    res = ws.call("exec", {"cmd": "while :; do :; done", "timeout_s": 1})
    assert res.timed_out and res.error_kind == "tool" and "timed out" in res.error
    assert time.monotonic() - start < 5
    ok(ws)


def test_process_ignoring_sigterm(ws):
    cmd = "trap '' TERM; (trap '' TERM; exec python3 -c 'import time; time.sleep(600)') & sleep 600"
    res = ws.call("exec", {"cmd": cmd, "timeout_s": 1})
    assert res.timed_out and res.exit_code == 137 and res.extras["signal"] == "SIGKILL"
    procs = ok(ws, "ps -u agent -o comm=").stdout.split()
    # Only the tool server and its spawner.
    assert procs.count("python3") == 2 and "sleep" not in procs, procs


def test_megabytes_of_output(ws):
    res = ws.call("exec", {"cmd": "head -c 30000000 /dev/zero | tr '\\0' a; seq 1 200000 >&2"})
    assert res.ok and res.stdout_truncated and res.stderr_truncated
    assert len(res.stdout) == 64 * 1024 and res.extras["stdout_bytes"] == 30_000_000
    ok(ws)


def test_binary_output(ws):
    res = ws.call("exec", {"cmd": "head -c 200000 /dev/urandom; printf '\\xff\\xfe' >&2"})
    assert res.ok and res.extras["stdout_binary"] and res.extras["stderr_binary"]
    assert isinstance(res.stdout, str) and len(res.stdout) > 1000
    ok(ws)


def test_network_is_unreachable(ws):
    res = ws.call("exec", {"cmd": "curl -sS -m 5 http://deb.debian.org/ -o /dev/null"})
    assert res.error_kind == "tool" and res.exit_code not in (0, None)
    py = "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"
    res = ws.call("exec", {"cmd": f'python3 -c "{py}"'})
    assert res.exit_code == 1 and "unreachable" in res.stderr.lower()
    assert ok(ws, "ls /sys/class/net").stdout.split() == ["lo"]


def test_host_paths_are_not_visible(ws):
    here = os.path.abspath(__file__)
    res = ws.call("exec", {"cmd": f"cat {here}; ls /var/run/docker.sock"})
    assert res.exit_code != 0 and "No such file" in res.stderr
    for path in ("/etc/passwd", "../../etc/shadow", here):
        res = ws.call("read", {"path": path})
        assert res.error_kind == "tool" and "outside /workspace" in res.error


def test_writes_outside_workspace_fail(ws):
    res = ws.call("exec", {"cmd": "touch /etc/x /usr/bin/x /x /opt/ise/toolserver.py"})
    assert res.error_kind == "tool" and "Read-only file system" in res.stderr
    ok(ws, "ln -s /etc /workspace/etc_link")
    for path in ("/etc/evil", "../evil", "etc_link/evil"):
        res = ws.call("write", {"path": path, "content": "x"})
        assert res.error_kind == "tool" and "outside" in res.error
    ok(ws, "test ! -e /etc/evil")


def test_kill_all_processes(ws):
    ws.seed_files({"keep.txt": "still here\n"})
    # It takes the tool server's spawner (the agent's uid) with it, never the server: the
    # call says so, everything is killed, the next call runs on a fresh spawner.
    res = ws.call("exec", {"cmd": "kill -9 -1; sleep 5"})
    assert res.error_kind == "tool" and res.extras["supervisor_restarted"], res
    assert "every process in the workspace was killed" in res.error
    assert ws.alive and ws.restarts == 0
    assert ok(ws, "cat keep.txt").stdout == "still here\n"


def test_command_closing_stdout_early(ws):
    res = ws.call("exec", {"cmd": "exec 1>&-; sleep 0.2; echo to-stderr >&2"})
    assert res.ok and res.stderr == "to-stderr\n" and res.stdout == ""
    res = ws.call("exec", {"cmd": "exec 1>&- 2>&-; sleep 30", "timeout_s": 1})
    assert res.timed_out
    assert ok(ws, "yes | head -n 2").stdout == "y\ny\n"


@pytest.mark.parametrize(
    "tool,args,needle",
    [
        ("exec", {"cmd": ["ls"]}, "must be str"),
        ("exec", "ls -la", "args must be an object"),
        ("exec", {}, "missing required argument"),
        ("exec", {"cmd": "true", "timeout_s": "soon"}, "timeout_s"),
        ("write", {"path": "a", "content": b"bytes"}, "JSON"),
        ("rm_rf", {"path": "/"}, "unknown tool"),
        ("snapshot", {}, "unknown tool"),  # host-only helper is not an agent tool
        ("edit", {"path": "a"}, "missing required argument"),
    ],
)
def test_malformed_tool_calls(sandbox, tool, args, needle):
    with sandbox.workspace() as ws:
        res = ws.call(tool, args)
        assert res.error_kind == "tool" and needle in res.error, res
        assert ws.alive
        ok(ws)


# --------------------------------------------------------------------------- infra failures


def test_container_death_is_infra(sandbox, client):
    with sandbox.workspace() as ws:
        ok(ws)
        client.api.kill(ws.container_id)
        res = ws.call("exec", {"cmd": "echo hi"})
        assert res.error_kind == "infra" and not ws.alive
        again = ws.call("read", {"path": "x"})
        assert again.error_kind == "infra"  # never "tool" on a dead workspace
    with sandbox.workspace() as fresh:  # the pipeline retries on a fresh workspace
        ok(fresh)


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    # Start as a plain process would, whatever the test runner's state.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGTERM}})
    from ise_dagster.sandbox import SandboxResource
    res = SandboxResource(label={label!r}, mem_limit="256m", workspace_size="64m",
                          tmp_size="16m")
    with res.workspace() as ws:
        print(ws.container_id, flush=True)
        time.sleep(60)
    """
)


def _spawn_owner(log) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(label=LABEL)],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),  # shown when the child misbehaves
        text=True,
    )
    cid = proc.stdout.readline().strip()
    assert cid, "child did not start a workspace"
    return proc, cid


def test_sigterm_removes_container(client, tmp_path):
    proc, cid = _spawn_owner(tmp_path / "child.log")
    assert cid in _ours(client)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"child ignored SIGTERM; its stderr: {(tmp_path / 'child.log').read_text()}")
    assert code == -signal.SIGTERM  # default action still happens (chained)
    assert cid not in _ours(client)


def test_crash_leftovers_are_swept(client, tmp_path):
    proc, cid = _spawn_owner(tmp_path / "child.log")
    proc.kill()  # SIGKILL: no handler runs, the container is left behind
    proc.wait()
    assert cid in _ours(client)
    assert sweep(client, LABEL)  # owner is dead -> swept (as done at start-up)
    assert cid not in _ours(client)


# --------------------------------------------------------------------------- seeding, pool


def test_seed_and_snapshot(ws, tmp_path):
    (tmp_path / "proj" / "pkg").mkdir(parents=True)
    (tmp_path / "proj" / "pkg" / "mod.py").write_text("print('hi')\n")
    ws.seed_dir(tmp_path / "proj")
    ws.seed_files({"notes/a.txt": "alpha\n", "bin.dat": b"\x00\x01\xff"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("from_tar.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"tar"))
    ws.seed_tar(buf.getvalue())
    assert ok(ws, "python3 pkg/mod.py && cat notes/a.txt from_tar.txt").stdout == "hi\nalpha\ntar"
    assert ok(ws, "stat -c %U notes/a.txt").stdout == "agent\n"
    snap = ws.snapshot(include_contents=["notes/a.txt", "bin.dat", "../etc/passwd"])
    paths = {f["path"]: f for f in snap["files"]}
    assert set(paths) == {"pkg/mod.py", "notes/a.txt", "bin.dat", "from_tar.txt"}
    assert paths["notes/a.txt"]["size"] == 6 and len(paths["notes/a.txt"]["sha256"]) == 64
    assert snap["contents"]["notes/a.txt"]["content"] == "alpha\n"
    assert snap["contents"]["bin.dat"] == {"content": "AAH/", "encoding": "base64",
                                           "truncated": False}  # fmt: skip
    assert "error" in snap["contents"]["../etc/passwd"]


def test_tools_end_to_end(ws):
    assert ws.call("write", {"path": "f.txt", "content": "a\nb\n"}).ok
    assert ws.call("edit", {"path": "f.txt", "old": "b", "new": "c"}).ok
    assert ws.call("read", {"path": "f.txt", "start_line": 2}).stdout == "c\n"
    patch = "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n-a\n+A\n c\n"
    assert ws.call("apply_patch", {"patch": patch}).ok
    job = ws.call("process", {"action": "start", "cmd": "sleep 30"}).extras["job"]
    assert ws.call("process", {"action": "poll", "job": job}).extras["running"]
    assert not ws.call("process", {"action": "kill", "job": job}).extras["running"]
    assert ok(ws, "git init -q && git add -A && git commit -qm init && git log --oneline | wc -l")


def test_warm_pool(client):
    res = SandboxResource(**{**CONFIG, "warm_pool_size": 2})
    mgr = res.manager()
    deadline = time.monotonic() + 20
    while mgr.pool_size() < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with res.workspace() as ws:
        ok(ws)
    res.close()
    assert _ours(client) == []
