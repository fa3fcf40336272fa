"""Every recipe, run for real in the sandbox: the fixture builds, the verifier rejects the
untouched fixture, the playbook hits its failure, recovers, and the verifier accepts."""

import json

import pytest

from ise_dagster.sandbox import AGENT_TOOLS, SandboxResource
from ise_dagster.stages import guards
from ise_dagster.tasklib import recipes
from ise_dagster.tasklib.runner import build_fixture, drive, seed_task, verify
from ise_dagster.taxonomy import load_taxonomy
from ise_dagster_tests.helpers import require_docker

LABEL = "ise.sandbox.test-recipes"
RECIPES = sorted(recipes().values(), key=lambda r: r.task_id)


@pytest.fixture(scope="module")
def sandbox():
    require_docker()
    res = SandboxResource(label=LABEL)
    yield res
    res.close()


def test_every_taxonomy_task_has_a_recipe():
    assert {t.id for t in load_taxonomy().tasks} == set(recipes())


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.task_id)
def test_fixture_is_deterministic(recipe):
    assert build_fixture(recipe, 11) == build_fixture(recipe, 11)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.task_id)
def test_recipe_fails_then_recovers_and_verifies(sandbox, recipe):
    with sandbox.workspace() as ws:
        ctx = seed_task(ws, recipe, seed=11)
        passed, reason = verify(ws, recipe)
        assert not passed, f"verifier accepts the untouched fixture: {reason}"

        events = list(drive(recipe.playbook(ctx), ws, ctx.task_dir))
        results = [r for e in events for r in e.results]
        calls = [c for e in events for c in e.calls]
        assert not any(r.is_infra_error for r in results)
        assert {c.tool for c in calls} <= AGENT_TOOLS
        assert set(load_taxonomy().task(recipe.task_id).tools) <= {c.tool for c in calls}
        assert 6 <= len(calls) <= 9, f"{len(calls)} tool calls; playbooks make 6-9"
        assert [e.reply is not None for e in events].count(True) == 2, "work, then verify"
        first_failure = next((i for i, r in enumerate(results) if not r.ok), None)
        assert first_failure is not None, f"no failure happened ({recipe.failure_mode})"
        assert any(r.ok for r in results[first_failure + 1 :]), "nothing after the failure worked"
        assert events[-1].reply, "the playbook must end on a reply to the user"
        # What Stage 2's guards would end the dialogue for, the offline agent never does.
        repeats = guards.RepeatedFailures()
        stuck = [repeats.record(c.tool, json.dumps(c.args), r.ok)
                 for c, r in zip(calls, results, strict=True)]  # fmt: skip
        assert not any(stuck), stuck
        assert guards.unworked_tasks([c.args for c in calls], [recipe.task_id]) == []
        assert not any(guards.is_call_as_text(e.reply) for e in events if e.reply)

        passed, reason = verify(ws, recipe)
        assert passed, f"verifier rejects the result: {reason}"


@pytest.mark.docker
def test_the_merge_reply_counts_the_exports_the_fixture_has(sandbox):
    """It once said 5 exports for 3: it counted ".csv" over both `ls -la` and `wc -l`."""
    recipe = recipes()["fileio-merge-csv-exports"]
    fixture, _ = build_fixture(recipe, 11)
    exports = [p for p in fixture.files if p.startswith("exports/") and p.endswith(".csv")]
    with sandbox.workspace() as ws:
        ctx = seed_task(ws, recipe, seed=11)
        replies = [e.reply for e in drive(recipe.playbook(ctx), ws, ctx.task_dir) if e.reply]
    assert replies[0].startswith(f"Merged the {len(exports)} monthly exports"), replies[0]
