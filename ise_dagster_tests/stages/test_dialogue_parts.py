"""Stage 2/3 building blocks that need no Docker."""

import statistics

import polars as pl
import pytest

from ise_dagster.checks.dialogues import message_schema_problems
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.simulator import UserView
from ise_dagster.stages.dialogues import select_intents
from ise_dagster.stages.guards import detect_role_drift, detect_stutter
from ise_dagster.stages.intents import sample_specs
from ise_dagster.stages.traces import _same, label_steps
from ise_dagster.tasklib.base import task_of
from ise_dagster.taxonomy import load_taxonomy

MIX = {"simple": 0.1, "medium": 0.4, "complex": 0.5}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def _view(spec, queries=(), replies=()):
    return UserView(spec.persona, "please help", spec.tasks, tuple(queries), tuple(replies))


def test_user_plan_matches_the_papers_turn_distribution(tax):
    specs = sample_specs(tax, "File-IO", 2000, seed=0, complexity_mix=MIX)
    turns = [len(OfflineUserSimulator(tax, k).plan(len(s.tasks))) for k, s in enumerate(specs)]
    assert abs(statistics.fmean(turns) - 8.12) < 0.2
    assert statistics.median(turns) == 8
    assert abs(sum(6 <= t <= 10 for t in turns) / len(turns) - 0.911) < 0.04


def test_user_requests_every_task_once_then_completes(tax):
    spec = sample_specs(tax, "Code-Runtime", 1, seed=3, complexity_mix=MIX)[0]
    user = OfflineUserSimulator(tax, 42)
    queries, replies, requested = [], [], []
    while True:
        turn = user.next_turn(_view(spec, queries, replies))
        if turn.completed:
            break
        assert not detect_role_drift(turn.query), turn.query
        queries.append(turn.query)
        replies.append("Done with that.")
        if turn.kind == "request":
            requested.append(turn.task_index)
    assert requested == list(range(len(spec.tasks)))
    assert queries[0].startswith("please help")  # the first turn delegates the intent itself
    assert turn.is_success


def test_user_judges_failure_from_the_agents_replies_only(tax):
    spec = sample_specs(tax, "Multimedia", 1, seed=1, complexity_mix=MIX)[0]
    user = OfflineUserSimulator(tax, 7)
    n = len(user.plan(len(spec.tasks)))
    final = user.next_turn(_view(spec, ["q"] * n, ["ok"] * (n - 1) + ["I could not fix it."]))
    assert final.completed and not final.is_success


@pytest.mark.parametrize(
    ("query", "drift"),
    [
        ("Can you merge the exports and verify the result?", False),
        ("Please also leave a short summary in NOTES.md.", False),
        ("I ran the script and it printed 114 rows.", True),
        ("Here is what I did: merged the files.", True),
        ("```bash\nls -la\n```", True),
        ("Checked: one header, 0 duplicate ids.", True),
        ("Exit codes matter; don't swallow errors.", False),  # a persona's closer
        ("Exit code: 1", True),
    ],
)
def test_role_drift_detector(query, drift):
    assert detect_role_drift(query) is drift


@pytest.mark.parametrize(
    "query, stutter",
    [
        ("With the best interests of everyone in mind, could you Could you merge the CSVs?", True),
        ("Please please merge them.", False),  # one word twice is emphasis, not a seam
        ("Merge the CSVs, then merge the logs.", False),
        ("Next: rotate the logs rotate the logs.", True),
    ],
)
def test_stutter_detector(query, stutter):
    assert detect_stutter(query) is stutter


def test_user_requests_never_repeat_a_phrase(tax):
    """Every persona's tone, requests only: a lead-in opener ("..., could you") once met a
    template that asks again ("Could you ...")."""
    specs = sample_specs(tax, "File-IO", 600, seed=5, complexity_mix=MIX)
    stutters = []
    for k, spec in enumerate(specs):
        user, queries = OfflineUserSimulator(tax, k), []
        while not (turn := user.next_turn(_view(spec, queries, ["ok"] * len(queries)))).completed:
            queries.append(turn.query)
        stutters += [q for q in queries if detect_stutter(q)]
    assert stutters == []


def _msgs(args='{"cmd": "ls"}', answer="call_0", success=True):
    return [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "exec", "arguments": args}}
        ]},
        {"role": "tool", "tool_call_id": answer, "name": "exec", "content": "{}",
         "success": success},
        {"role": "assistant", "content": "done"},
    ]  # fmt: skip


def test_message_schema_validation():
    assert message_schema_problems(_msgs()) == []
    assert "do not parse as JSON" in message_schema_problems(_msgs(args="{ls"))[0]
    assert "not a JSON object" in message_schema_problems(_msgs(args='"ls"'))[0]
    assert "unanswered" in message_schema_problems(_msgs(answer="call_9"))[0]
    assert "system prompt" in message_schema_problems(_msgs()[1:])[0]
    # A malformed call kept as written is valid when a failed tool result (its rejection)
    # answers it, and only then.
    assert message_schema_problems(_msgs(args="{ls", success=False)) == []
    assert message_schema_problems(_msgs(args='"ls"', success=False)) == []
    assert "do not parse as JSON" in message_schema_problems(_msgs(args="{ls")[:3])[0]


def test_select_intents_does_not_reuse_until_the_pool_is_used_up():
    pool = pl.DataFrame({"intent_id": [f"int-{i}" for i in range(25)]})
    days = [f"2026-11-{d:02d}" for d in range(1, 6)]
    picks = [select_intents(pool, d, 10, 0, "2026-11-01")["intent_id"].to_list() for d in days]
    assert picks[0] == select_intents(pool, days[0], 10, 0, "2026-11-01")["intent_id"].to_list()
    assert len(set(picks[0] + picks[1])) == 20  # no reuse while unused ones remain
    assert set(picks[0] + picks[1] + picks[2]) == set(pool["intent_id"])  # then it wraps
    assert picks[0] != select_intents(pool, days[0], 10, 1, "2026-11-01")["intent_id"].to_list()
    with pytest.raises(ValueError, match="before the partitions' start date"):
        select_intents(pool, "2026-10-01", 10, 0, "2026-11-01")


def test_task_of_and_step_labels():
    ids = ["a-task", "b-task"]
    assert task_of({"cwd": "a-task"}, ids) == "a-task"
    assert task_of({"path": "b-task/out/x.csv"}, ids) == "b-task"
    assert task_of({"cmd": "ls"}, ids) is None
    # What LLM agents send: absolute paths, no cwd, a cd in the command, a background job.
    assert task_of({"path": "/workspace/b-task/notes.md"}, ids) == "b-task"
    assert task_of({"cwd": "/workspace/a-task/src"}, ids) == "a-task"
    assert task_of({"cmd": "cd /workspace/a-task && make"}, ids) == "a-task"
    assert task_of({"cmd": "diff a-task/x b-task/x"}, ids) is None  # two tasks: not one's
    assert task_of({"cmd": "ls a-tasks/"}, ids) is None  # a longer name is not the task
    assert task_of({"action": "poll", "job": "j1"}, ids, {"j1": "b-task"}) == "b-task"
    steps = [
        {"ok": True, "task_id": "a-task"},
        {"ok": False, "task_id": "a-task"},  # fixed later, task verified -> recovered
        {"ok": True, "task_id": "a-task"},
        {"ok": False, "task_id": "b-task"},  # fixed later but task not verified -> failed
        {"ok": True, "task_id": "b-task"},
        {"ok": False, "task_id": "a-task"},  # nothing after it -> failed
    ]
    labels = label_steps(steps, {"a-task": True, "b-task": False})
    assert labels == ["ok", "recovered", "ok", "failed", "ok", "failed"]


def test_observation_comparison_ignores_only_digits():
    assert _same("-rw-r--r-- 1 agent 120 Nov 24 22:31 x", "-rw-r--r-- 1 agent 99 Nov 25 01:02 x")
    assert not _same("merged.csv", "merged.txt")


def test_tool_messages_carry_the_background_job_facts_the_agent_acts_on():
    import json

    from ise_dagster.sandbox import ToolResult
    from ise_dagster.stages.dialogues import tool_content

    poll = ToolResult(tool="process", ok=True, exit_code=0,
                      extras={"job": "job1", "running": False, "job_exit_code": 3})  # fmt: skip
    assert json.loads(tool_content(poll)) == {
        "ok": True, "exit_code": 0, "job": "job1", "running": False, "job_exit_code": 3
    }  # fmt: skip


def test_tool_messages_say_what_the_end_of_a_call_killed_or_left_unread():
    import json

    from ise_dagster.sandbox import ToolResult
    from ise_dagster.stages.dialogues import tool_content

    escaped = ToolResult(tool="exec", ok=True, exit_code=0, stdout="started\n",
                         extras={"escaped_killed": [{"pid": 9, "cmd": "sleep 1000"}],
                                 "stdin_truncated": True})  # fmt: skip
    body = json.loads(tool_content(escaped))
    assert body["killed_at_exit"] == ["sleep 1000"] and body["stdin_truncated"] is True
    survivors = [{"pid": 5, "cmd": "sleep 500"}]
    listing = ToolResult(tool="process", ok=True, exit_code=0,
                         extras={"jobs": [], "survivors": survivors})  # fmt: skip
    body = json.loads(tool_content(listing))
    assert body["jobs"] == [] and body["survivors"][0]["cmd"] == "sleep 500"
