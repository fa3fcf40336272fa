"""Stages 2 and 3 for real: live dialogues in the sandbox, replays, and their faults."""

import dataclasses
import json

import pytest

from ise_dagster.sandbox import SandboxInfraError, SandboxResource, Workspace, docker_client
from ise_dagster.stages import dialogues as stage2
from ise_dagster.stages.dialogues import DialogueSettings, simulate
from ise_dagster.stages.traces import replay
from ise_dagster.tasklib import Fixture, recipe_for
from ise_dagster.taxonomy import load_taxonomy
from ise_dagster_tests.helpers import require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]
LABEL = "ise.sandbox.test-stages"
TASK = "fileio-merge-csv-exports"


@pytest.fixture(scope="module")
def sandbox():
    require_docker()
    res = SandboxResource(label=LABEL)
    yield res
    res.close()
    leftovers = docker_client().api.containers(all=True, filters={"label": LABEL})
    assert leftovers == []


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def _intent(tax, tasks=(TASK,)):
    return {
        "intent_id": "int-test-" + "-".join(tasks),
        "domain": "File-IO",
        "natural_language_intent": "Please sort out my exports.",
        "domains": ["File-IO", "Code-Runtime"],
        "tasks": list(tasks),
        "persona": tax.personas[5].to_dict(),
        "complexity": "simple",
    }


def test_dialogue_runs_live_and_replays_verified(sandbox, tax):
    row = simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings())
    assert row["status"] == "completed" and row["attempts"] == 1
    messages = json.loads(row["messages"])
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    assert len(tool_msgs) == row["tool_calls"] >= 5
    assert any(not m["success"] for m in tool_msgs)  # the recipe's real failure was seen
    assert row["total_turns"] == len(messages) - 1

    trace = replay(row, sandbox)
    assert trace["label"] == "verified", trace["task_verdicts"]
    assert trace["n_steps"] == row["tool_calls"]
    assert trace["n_recovered"] >= 1
    assert trace["n_mismatched"] == 0


def test_unknown_task_is_a_labeled_row(sandbox, tax):
    row = simulate(_intent(tax, ("fileio-no-such-task",)), "2026-11-24", tax, sandbox,
                   DialogueSettings())  # fmt: skip
    assert row["status"] == "invalid_intent"
    assert "fileio-no-such-task" in row["error"]


def test_broken_fixture_is_a_labeled_row_naming_the_command(sandbox, tax, monkeypatch):
    good = recipe_for(TASK)

    def broken(rng):
        fixture, facts = good.fixture(rng)
        return Fixture(fixture.files, ("git init -q && exit 3",)), facts

    monkeypatch.setattr(stage2, "recipe_for", lambda t: dataclasses.replace(good, fixture=broken))
    row = simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings())
    assert row["status"] == "fixture_error"
    assert TASK in row["error"] and "exit 3" in row["error"]


def test_crashing_verifier_labels_the_trace_failed_with_its_reason(sandbox, tax, monkeypatch):
    row = simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings())
    crashing = dataclasses.replace(recipe_for(TASK), verify="raise RuntimeError('verifier boom')")
    monkeypatch.setattr("ise_dagster.stages.traces.recipe_for", lambda t: crashing)
    trace = replay(row, sandbox)
    assert trace["label"] == "failed"
    assert "verifier boom" in trace["task_verdicts"][0]["reason"]


def test_sandbox_dying_mid_dialogue_is_retried_on_a_fresh_workspace(sandbox, tax, monkeypatch):
    real_call = Workspace.call
    killed = []

    def call(self, tool, args, **kw):
        if not killed and tool == "edit":  # mid-trajectory, after the first failure
            killed.append(self.container_id)
            self.client.api.kill(self.container_id)
        return real_call(self, tool, args, **kw)

    monkeypatch.setattr(Workspace, "call", call)
    row = simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings())
    assert killed and row["status"] == "completed" and row["attempts"] == 2
    clean = simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings())
    # Nothing of the dead attempt leaked in. `ls -l` times are masked: the two runs may
    # straddle a minute boundary (this test once failed on 14:42 vs 14:43).
    assert _no_mtimes(row["messages"]) == _no_mtimes(clean["messages"])


def _no_mtimes(text: str) -> str:
    import re

    return re.sub(r"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d", "<mtime>", text)


def test_sandbox_that_keeps_dying_raises_instead_of_labeling(sandbox, tax, monkeypatch):
    real_call = Workspace.call

    def call(self, tool, args, **kw):
        if tool == "edit":
            self.client.api.kill(self.container_id)
        return real_call(self, tool, args, **kw)

    monkeypatch.setattr(Workspace, "call", call)
    with pytest.raises(SandboxInfraError, match="sandbox failed 2 times"):
        simulate(_intent(tax), "2026-11-24", tax, sandbox, DialogueSettings(infra_retries=1))


def test_docker_unavailable_says_how_to_start_it(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxInfraError, match="Start Docker"):
        SandboxResource(label=LABEL).manager()


def test_dialogues_reaching_the_turn_cap_are_discarded_and_counted(sandbox, tax):
    import polars as pl

    from ise_dagster.stages.dialogues import simulate_partition

    intents = pl.DataFrame([_intent(tax)]).with_columns(pl.lit("int-cap").alias("intent_id"))
    frame, counts = simulate_partition(intents, "2026-11-24", tax, sandbox,
                                       DialogueSettings(max_user_turns=1),
                                       progress=lambda m: None)  # fmt: skip
    assert frame.height == 0
    assert counts == {"turn_cap": 1}


class _DictCheckpoint:
    def __init__(self):
        self.rows = {}

    def get(self, intent, date):
        return self.rows.get(intent["intent_id"])

    def put(self, intent, date, row):
        self.rows[intent["intent_id"]] = row


class _OverflowingAgent:
    name = "overflowing-agent"
    system_prompt = "You are an agent."
    usage = None

    def __init__(self, recipes, contexts):
        pass

    def respond(self, turn, run_tools):
        from ise_dagster.llm.client import ContextLengthError

        raise ContextLengthError("maximum context length is 2048 tokens")


class _OverflowingUser:
    name = "overflowing-user"
    usage = None

    def __init__(self, taxonomy, seed):
        pass

    def next_turn(self, view):
        from ise_dagster.llm.client import ContextLengthError

        raise ContextLengthError("maximum context length is 4096 tokens")


def test_model_side_failures_are_labeled_but_not_checkpointed(sandbox, tax):
    import polars as pl

    from ise_dagster.stages.dialogues import simulate_partition

    intents = pl.DataFrame([_intent(tax)])
    checkpoint = _DictCheckpoint()
    frame, counts = simulate_partition(intents, "2026-11-24", tax, sandbox, DialogueSettings(),
                                       progress=lambda m: None, agent_factory=_OverflowingAgent,
                                       checkpoint=checkpoint)  # fmt: skip
    assert frame["status"].to_list() == ["context_length"]
    assert "2048" in frame["error"][0]
    assert checkpoint.rows == {}  # a bigger context on the next run may finish it
    frame, _ = simulate_partition(intents, "2026-11-24", tax, sandbox, DialogueSettings(),
                                  progress=lambda m: None, user_factory=_OverflowingUser,
                                  checkpoint=checkpoint)  # fmt: skip
    assert frame["status"].to_list() == ["context_length"]
    assert frame["error"][0].startswith("user simulator:") and checkpoint.rows == {}
    # A dialogue that finished is checkpointed and resumed on the next run.
    frame, counts = simulate_partition(intents, "2026-11-24", tax, sandbox, DialogueSettings(),
                                       progress=lambda m: None, checkpoint=checkpoint)  # fmt: skip
    assert frame["status"].to_list() == ["completed"] and counts["resumed"] == 0
    assert list(checkpoint.rows) == [intents["intent_id"][0]]
    again, counts = simulate_partition(intents, "2026-11-24", tax, sandbox, DialogueSettings(),
                                       progress=lambda m: None, checkpoint=checkpoint)  # fmt: skip
    assert counts["resumed"] == 1 and again.equals(frame)


def test_an_abandoned_partition_stops_the_dialogues_in_flight(sandbox, tax):
    """When one dialogue fails for good (or the step is interrupted), the others stop at
    their next tool call instead of running to their end, and remove their workspaces."""
    import threading

    import polars as pl

    from ise_dagster.llm.simulator import AgentTurn
    from ise_dagster.tasklib.base import Call

    first_call_done = threading.Event()
    seen: dict[str, object] = {}

    class Failing:
        name, model, usage, system_prompt = "failing", "x", None, "sys"

        def respond(self, turn, run_tools):
            assert first_call_done.wait(60)
            raise RuntimeError("the model server is gone for good")

    class Busy:
        name, model, usage, system_prompt = "busy", "x", None, "sys"

        def respond(self, turn, run_tools):
            run_tools([Call("exec", {"cmd": "true", "cwd": TASK})], "")
            first_call_done.set()
            seen["stopped"] = run_tools.stop.wait(60)  # set once the partition is abandoned
            try:
                run_tools([Call("exec", {"cmd": "true", "cwd": TASK})], "")
            except stage2.Cancelled as e:
                seen["cancelled"] = e
                raise
            return AgentTurn("done")

    intents = [_intent(tax), {**_intent(tax), "intent_id": "int-test-busy"}]
    agents = iter([Failing(), Busy()])
    with pytest.raises(RuntimeError, match="gone for good"):
        stage2.simulate_partition(
            pl.DataFrame(intents), "2026-11-24", tax, sandbox, DialogueSettings(),
            concurrency=2, progress=lambda _: None, agent_factory=lambda *_: next(agents),
        )  # fmt: skip
    assert seen["stopped"] is True and isinstance(seen["cancelled"], stage2.Cancelled)
