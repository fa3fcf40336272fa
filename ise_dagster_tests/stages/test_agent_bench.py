"""The agent benchmark: sampling, the summary's figures, the offline reference passing its
tasks through the real asset, and an idle agent failing on the verifier's word."""

import polars as pl
import pytest
from dagster import materialize

from ise_dagster import schemas
from ise_dagster.assets.benchmark import agent_benchmark
from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.llm.simulator import AgentTurn
from ise_dagster.resources import LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource, docker_client
from ise_dagster.stages import agent_bench
from ise_dagster.stages.dialogues import DialogueSettings
from ise_dagster.taxonomy import load_taxonomy
from ise_dagster_tests.helpers import require_docker

LABEL = "ise.sandbox.test-agent-bench"


def test_the_sample_is_fixed_and_per_domain():
    tax = load_taxonomy()
    first = agent_bench.sample_tasks(tax, 2, seed=0)
    assert first == agent_bench.sample_tasks(tax, 2, seed=0)
    assert len(first) == 2 * len(tax.domain_ids)
    assert {t.domain for t in first} == set(tax.domain_ids)
    assert agent_bench.sample_tasks(tax, 2, seed=1) != first
    assert len(agent_bench.sample_tasks(tax, None)) == len(tax.tasks)
    only = agent_bench.sample_tasks(tax, 3, domains=["Multimedia"])
    assert [t.domain for t in only] == ["Multimedia"] * 3
    with pytest.raises(ValueError, match="unknown domain.*Nope"):
        agent_bench.sample_tasks(tax, 1, domains=["Nope"])


def test_the_bench_intent_is_the_same_for_every_agent():
    tax = load_taxonomy()
    for task in tax.tasks:  # every layout of the writer, with a single task
        intent = agent_bench.bench_intent(task, tax)
        assert intent == agent_bench.bench_intent(task, tax)
        assert intent["tasks"] == [task.id] and len(intent["natural_language_intent"]) > 20


def _row(domain, passed, tool_calls, malformed, tokens=0):
    return {"task_id": f"t{tool_calls}", "domain": domain, "passed": passed,
            "status": "completed", "reason": "", "user_turns": 2, "tool_calls": tool_calls,
            "malformed_tool_calls": malformed, "llm_calls": 3, "prompt_tokens": tokens,
            "completion_tokens": 0, "cost_usd": 0.01, "duration_s": 1.0,
            "agent_model": "m", "user_model": "u"}  # fmt: skip


def test_the_summary_gives_pass_at_1_and_call_validity_per_domain_and_overall():
    results = pl.DataFrame(
        [_row("A", True, 8, 0, 100), _row("A", False, 2, 1, 50), _row("B", True, 10, 1)],
        schema=schemas.AGENT_BENCH,
    )
    table = {r["domain"]: r for r in agent_bench.summary(results).iter_rows(named=True)}
    assert list(table) == ["A", "B", "overall"]
    assert (table["A"]["pass_at_1"], table["A"]["valid_tool_calls"]) == (0.5, 0.9)
    assert (table["overall"]["passed"], table["overall"]["tasks"]) == (2, 3)
    assert table["overall"]["valid_tool_calls"] == 0.9  # 2 malformed of 20
    assert table["A"]["tokens"] == 150 and table["overall"]["cost_usd"] == 0.03
    assert "| overall | 3 | 2 | 0.667 |" in agent_bench.summary_markdown(results)


@pytest.fixture
def engine():
    require_docker()
    yield
    assert docker_client().api.containers(all=True, filters={"label": LABEL}) == []


@pytest.mark.docker
@pytest.mark.slow
def test_the_offline_reference_passes_its_tasks(engine, tmp_path):
    resources = {
        "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path)),
        "taxonomy": TaxonomyResource(),
        "llm": LLMResource(backend="offline"),
        "sandbox": SandboxResource(label=LABEL),
    }
    config = {"tasks_per_domain": 1, "domains": ["File-IO", "System-Infrastructure"]}
    result = materialize([agent_benchmark], resources=resources,
                         run_config={"ops": {"agent_benchmark": {"config": config}}})  # fmt: skip
    assert result.success
    rows = pl.read_parquet(tmp_path / "agent_benchmark.parquet")
    assert rows.height == 2 and rows["passed"].all(), rows.select("task_id", "reason")
    assert (rows["status"] == "completed").all() and (rows["tool_calls"] >= 6).all()
    meta = result.asset_materializations_for_node("agent_benchmark")[0].metadata
    assert meta["pass_at_1"].value == 1.0 and meta["tasks"].value == 2
    assert "| overall | 2 | 2 | 1.0 |" in meta["summary"].value


class IdleAgent:
    """Answers every turn without touching the workspace."""

    name, model, usage, system_prompt = "idle", "idle", None, "You are idle."

    def respond(self, turn, run_tools):
        return AgentTurn("All done!")


@pytest.mark.docker
@pytest.mark.slow
def test_an_agent_that_does_no_work_fails_on_the_verifier_s_word(engine):
    tax = load_taxonomy()
    task = tax.task("fileio-merge-csv-exports")
    sandbox = SandboxResource(label=LABEL)
    try:
        results = agent_bench.run_benchmark(
            [task], tax, sandbox, DialogueSettings(), agent_factory=lambda *_: IdleAgent(),
            progress=lambda _: None,
        )  # fmt: skip
    finally:
        sandbox.close()
    row = results.row(0, named=True)
    assert (row["passed"], row["status"], row["tool_calls"]) == (False, "premature_completion", 0)
    assert row["reason"]  # the verifier's own words
