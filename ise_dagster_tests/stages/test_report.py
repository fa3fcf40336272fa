"""The Markdown the UI shows and the progress lines long steps log."""

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ise_dagster.stages.progress import completed_with_progress, progress_line
from ise_dagster.stages.report import (
    histogram,
    markdown_table,
    sample_trajectory,
)


def test_markdown_table_escapes_pipes_and_newlines():
    table = markdown_table(["a", "b"], [("x|y", "1\n2")])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 2 |"]


def test_histogram_has_a_row_per_value_and_bars_scaled_to_the_peak():
    rows = histogram([6, 7, 7, 9], "user turns", "dialogues").splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| 6", "| 7", "| 8", "| 9"]
    counts = [int(r.split(" | ")[1]) for r in rows]
    bars = [r.split(" | ")[2].count("█") for r in rows]
    assert counts == [1, 2, 0, 1] and bars == [10, 20, 0, 10]


def test_histogram_bins_wide_ranges_and_counts_every_value():
    values = list(range(3, 60))
    rows = histogram(values, "tool calls", "dialogues", max_rows=10).splitlines()[2:]
    assert len(rows) <= 10 and rows[0].startswith("| 3-")
    assert sum(int(r.split(" | ")[1]) for r in rows) == len(values)


def test_histogram_of_nothing_says_so():
    assert histogram([], "tool calls", "dialogues") == "No dialogues."


def test_sample_trajectory_abridges_and_stops_after_the_asked_user_turns():
    messages = [
        {"role": "system", "content": "secret system prompt"},
        {"role": "user", "content": "please tidy /workspace"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"function": {"name": "exec", "arguments": json.dumps({"cmd": "ls " + "x" * 500})}}
            ],
        },
        {"role": "tool", "name": "exec", "success": False, "content": "`boom`\n" * 100},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "second turn"},
        {"role": "user", "content": "third turn"},
    ]
    text = sample_trajectory(messages, turns=1, limit=60)
    assert "secret" not in text and "second turn" not in text
    assert "**assistant → `exec`**" in text and "**tool `exec` (failed):**" in text
    assert "*… 2 more user turns*" in text
    tool_line = next(line for line in text.split("\n\n") if line.startswith("**tool"))
    assert len(tool_line) < 120 and "`boom`" not in tool_line  # backticks cannot break it


def test_progress_line_has_rate_and_eta():
    assert progress_line("replays", 2, 10, 60.0) == (
        "replays: 2/10 (20%), 0:01:00 elapsed, 2.0/min, ETA 0:04:00"
    )
    assert progress_line("replays", 10, 10, 60.0).endswith("10.0/min")


def test_progress_logs_every_tenth_and_yields_every_future():
    lines: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(lambda k=k: k) for k in range(20)]
        got = sorted(f.result() for f in completed_with_progress(futures, "x", lines.append))
    assert got == list(range(20))
    assert [line.split(" ")[1] for line in lines] == [f"{k}/20" for k in range(2, 21, 2)]


def test_progress_heartbeats_while_everything_is_still_running():
    lines: list[str] = []
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(release.wait, 10)
        for _ in completed_with_progress(
            [future], "slow", lambda line: (lines.append(line), release.set()), heartbeat_s=0.05
        ):
            pass
    assert lines[0].startswith("slow: 0/1 (0%)") and lines[0].endswith("1 running")
    assert lines[-1].startswith("slow: 1/1 (100%)")


def test_the_heartbeat_counts_running_items_not_queued_ones():
    lines: list[str] = []
    started, release = threading.Event(), threading.Event()

    def first():
        started.set()
        release.wait(10)

    with ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(first), pool.submit(int), pool.submit(int)]
        assert started.wait(10)
        for _ in completed_with_progress(
            futures, "x", lambda line: (lines.append(line), release.set()), heartbeat_s=0.05
        ):
            pass
    # One worker: one item runs, two wait (the elapsed time is whatever the machine took).
    assert re.fullmatch(r"x: 0/3 \(0%\), \d+:\d\d:\d\d elapsed, 1 running", lines[0]), lines[0]


def test_progress_raises_the_first_failure_to_the_consumer():
    def boom():
        raise RuntimeError("dead container")

    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="dead container"):
        for f in completed_with_progress([pool.submit(boom)], "x", lambda line: None):
            f.result()


def test_a_command_that_ran_and_failed_reads_as_failed():
    ran = {"role": "tool", "name": "exec", "success": True, "content": '{"ok": false}'}
    text = sample_trajectory([{"role": "user", "content": "go"}, ran])
    assert "**tool `exec` (failed):**" in text
