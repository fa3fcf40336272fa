"""Tool semantics of the in-container server, run in-process on a temp dir (no Docker)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ise_dagster.sandbox import toolserver
from ise_dagster.sandbox.result import ToolResult


@pytest.fixture
def srv(tmp_path: Path) -> toolserver.ToolServer:
    ws = tmp_path / "ws"
    ws.mkdir()
    return toolserver.ToolServer(str(ws), max_output=1000, default_timeout=5,
                                 jobs_dir=str(tmp_path / "jobs"))  # fmt: skip


def call(srv: toolserver.ToolServer, tool: str, **args) -> dict:
    res = srv.handle({"id": 7, "tool": tool, "args": args})
    assert res["id"] == 7 and "duration_ms" in res
    return res


def tool_error(res: dict, needle: str) -> None:
    assert res["ok"] is False and res["error_kind"] == "tool", res
    assert needle in res["error"], res["error"]


def test_write_read_and_line_ranges(srv):
    assert call(srv, "write", path="d/f.txt", content="a\nb\nc\nd\n")["ok"]
    assert call(srv, "read", path="d/f.txt")["stdout"] == "a\nb\nc\nd\n"
    res = call(srv, "read", path="d/f.txt", start_line=2, end_line=3)
    assert res["stdout"] == "b\nc\n" and res["total_lines"] == 4
    assert call(srv, "read", path="d/f.txt", start_line=4)["stdout"] == "d\n"
    assert call(srv, "read", path="d/f.txt", start_line=9)["stdout"] == ""
    tool_error(call(srv, "read", path="d/f.txt", start_line=0), "start_line")
    tool_error(call(srv, "read", path="missing.txt"), "no such file")
    tool_error(call(srv, "read", path="d"), "directory")


def test_a_line_range_streams_and_obeys_the_cap(srv, tmp_path):
    """A range read once loaded the whole file before slicing it."""
    import tracemalloc

    long_line = "y" * 200_000  # longer than one read chunk
    call(srv, "write", path="f", content=f"a\n{long_line}\nc")
    res = call(srv, "read", path="f", start_line=3)
    assert res["stdout"] == "c" and res["total_lines"] == 3 and res["end_line"] == 3
    res = call(srv, "read", path="f", start_line=2, end_line=2)
    assert res["stdout_truncated"] and res["stdout"] == "y" * 1000  # the server's cap
    assert call(srv, "read", path="f", start_line=2, max_output_bytes=5)["stdout"] == "yyyyy"
    line = b"0123456789" * 1000 + b"\n"
    (tmp_path / "ws" / "huge").write_bytes(line * 3_000)  # 30 MB
    tracemalloc.start()
    res = call(srv, "read", path="huge", start_line=10, end_line=11, max_output_bytes=30_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res["stdout"] == (line * 2).decode() and res["total_lines"] == 3_000
    assert peak < 2_000_000, f"peak {peak} bytes: the file was loaded"


def test_read_caps_and_binary(srv):
    call(srv, "write", path="big", content="x" * 5000)
    res = call(srv, "read", path="big")
    assert res["stdout_truncated"] and len(res["stdout"]) == 1000
    call(srv, "write", path="bin", content="AAEC/w==", encoding="base64")
    res = call(srv, "read", path="bin")
    assert res["ok"] and res["stdout_binary"]
    assert call(srv, "read", path="bin", encoding="base64")["stdout"] == "AAEC/w=="


def test_edit_exact_absent_ambiguous(srv):
    call(srv, "write", path="f.py", content="x = 1\ny = 1\n")
    res = call(srv, "edit", path="f.py", old="x = 1", new="x = 2")
    assert res["ok"] and res["replacements"] == 1
    tool_error(call(srv, "edit", path="f.py", old="z = 9", new="q"), "not found")
    tool_error(call(srv, "edit", path="f.py", old=" = ", new="="), "ambiguous: 2 matches")
    assert call(srv, "read", path="f.py")["stdout"] == "x = 2\ny = 1\n"  # unchanged by errors
    res = call(srv, "edit", path="f.py", old=" = ", new="=", replace_all=True)
    assert res["ok"] and res["replacements"] == 2
    tool_error(call(srv, "edit", path="f.py", old="", new="x"), "non-empty")
    tool_error(call(srv, "edit", path="nope.py", old="a", new="b"), "no such file")


def test_apply_patch(srv):
    call(srv, "write", path="src/a.txt", content="one\ntwo\nthree\n")
    patch = (
        "--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
        "--- /dev/null\n+++ b/src/new.txt\n@@ -0,0 +1 @@\n+fresh\n"
    )
    res = call(srv, "apply_patch", patch=patch)
    assert res["ok"], res
    assert call(srv, "read", path="src/a.txt")["stdout"] == "one\nTWO\nthree\n"
    assert call(srv, "read", path="src/new.txt")["stdout"] == "fresh\n"
    # Same patch again does not apply (hunk already applied) and changes nothing.
    res = call(srv, "apply_patch", patch=patch)
    tool_error(res, "does not apply")
    assert call(srv, "read", path="src/a.txt")["stdout"] == "one\nTWO\nthree\n"
    tool_error(call(srv, "apply_patch", patch="--- /etc/passwd\n+++ /etc/passwd\n"), "unsafe")
    tool_error(call(srv, "apply_patch", patch="--- a/../x\n+++ b/../x\n"), "unsafe")
    tool_error(call(srv, "apply_patch", patch="not a diff"), "no '---'")


def test_path_escape(srv, tmp_path):
    (tmp_path / "secret").write_text("s")
    for path in ("/etc/passwd", "../secret", "a/../../secret", str(tmp_path / "secret")):
        tool_error(call(srv, "read", path=path), "outside")
        tool_error(call(srv, "write", path=path, content="x"), "outside")
    Path(srv.workspace, "link").symlink_to(tmp_path)
    tool_error(call(srv, "read", path="link/secret"), "outside")
    tool_error(call(srv, "exec", cmd="pwd", cwd=".."), "outside")


def test_exec_basics(srv):
    res = call(srv, "exec", cmd="echo out; echo err >&2; exit 3")
    assert (res["stdout"], res["stderr"], res["exit_code"]) == ("out\n", "err\n", 3)
    tool_error(res, "exited with code 3")
    res = call(srv, "exec", cmd="pwd; echo $FOO", env={"FOO": "bar"})
    assert res["ok"] and res["stdout"] == f"{srv.workspace}\nbar\n"
    assert call(srv, "exec", cmd="cat", stdin="piped")["stdout"] == "piped"
    res = call(srv, "exec", cmd="head -c 5000 /dev/zero | tr '\\0' a", max_output_bytes=10)
    assert res["stdout"] == "a" * 10 and res["stdout_truncated"] and res["stdout_bytes"] == 5000


def test_exec_timeout_kills_group(srv):
    start = time.monotonic()
    res = call(srv, "exec", cmd="trap '' TERM; (trap '' TERM; sleep 60) & sleep 60", timeout_s=0.5)
    assert res["timed_out"] and res["error_kind"] == "tool" and res["exit_code"] == 137
    assert time.monotonic() - start < 3


def test_exec_background_child_does_not_hang(srv):
    start = time.monotonic()
    res = call(srv, "exec", cmd="sleep 30 & echo started")
    assert res["ok"] and res["stdout"] == "started\n"
    assert time.monotonic() - start < 2


def test_process_lifecycle(srv):
    res = call(srv, "process", action="start", cmd="for i in 1 2 3; do echo line$i; done; sleep 30")
    assert res["ok"] and res["running"]
    job = res["job"]
    deadline = time.monotonic() + 5
    while "line3" not in (out := call(srv, "process", action="read", job=job))["stdout"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert out["stdout"] == "line1\nline2\nline3\n" and out["running"]
    more = call(srv, "process", action="read", job=job, stdout_offset=out["stdout_next_offset"])
    assert more["stdout"] == ""
    assert call(srv, "process", action="list")["jobs"][0]["job"] == job
    killed = call(srv, "process", action="kill", job=job)
    assert killed["running"] is False and killed["job_exit_code"] in (137, 143)
    res = call(srv, "process", action="start", cmd="exit 4")
    time.sleep(0.3)
    assert call(srv, "process", action="poll", job=res["job"])["job_exit_code"] == 4
    tool_error(call(srv, "process", action="poll", job="job99"), "unknown job")
    tool_error(call(srv, "process", action="explode", job=job), "unknown action")


@pytest.mark.parametrize(
    "request_,needle",
    [
        ({"tool": "exec", "args": {"cmd": 123}}, "must be str"),
        ({"tool": "exec", "args": {}}, "missing required argument 'cmd'"),
        ({"tool": "exec", "args": {"cmd": "true", "timeout_s": -1}}, "timeout_s"),
        ({"tool": "exec", "args": {"cmd": "true", "env": {"A": 1}}}, "env"),
        ({"tool": "exec", "args": "ls"}, "args must be a JSON object"),
        ({"tool": "nope"}, "unknown tool"),
        ({"tool": None}, "unknown tool"),
        ({"tool": "read", "args": {"path": ["a"]}}, "must be str"),
        ({"tool": "read", "args": {"path": "a", "start_line": True}}, "must be int"),
        ({"tool": "write", "args": {"path": "a", "content": "%%", "encoding": "base64"}}, "base64"),
        ({"tool": "process", "args": {}}, "action"),
        ("a string", "JSON object"),
    ],
)
def test_malformed_args_are_tool_errors(srv, request_, needle):
    tool_error(srv.handle(request_), needle)


def test_main_loop_survives_garbage(tmp_path):
    """The real stdin/stdout loop: garbage lines get error replies, the server keeps going."""
    proc = subprocess.Popen(
        [sys.executable, toolserver.__file__, "--workspace", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    lines = [
        b"{not json\n",
        b"[1,2]\n",
        b"\n",
        b'{"id": 5, "tool": "exec", "args": {"cmd": "echo ok"}}\n',
    ]
    out, _ = proc.communicate(b"".join(lines), timeout=20)
    replies = [json.loads(line) for line in out.splitlines()]
    assert replies[0]["event"] == "ready"
    assert replies[1]["error_kind"] == "tool" and "malformed JSON" in replies[1]["error"]
    assert replies[2]["error_kind"] == "tool"
    assert replies[3]["id"] == 5 and replies[3]["stdout"] == "ok\n"
    assert ToolResult.from_response("exec", replies[3]).to_dict()["stdout"] == "ok\n"
