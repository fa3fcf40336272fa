"""The Stage 2/3 assets through real Dagster machinery, including a killed-and-resumed run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from dagster import AssetChecksDefinition, DagsterInstance, MultiPartitionKey, materialize

from ise_dagster.assets.dialogues import dialogues, executed_traces
from ise_dagster.assets.intents import intents
from ise_dagster.assets.sft import sft_dataset, sft_export
from ise_dagster.checks import dialogues as dialogue_checks
from ise_dagster.checks import sft as sft_checks
from ise_dagster.checks import traces as trace_checks
from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.resources import EmbedderResource, LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource, docker_client
from ise_dagster.sft.openai_format import openai_format_errors
from ise_dagster_tests.helpers import require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]
LABEL = "ise.sandbox.test-assets"
KEY = MultiPartitionKey({"date": "2026-11-24", "domain": "File-IO"})
CHECKS = [
    c
    for module in (dialogue_checks, trace_checks, sft_checks)
    for c in vars(module).values()
    if isinstance(c, AssetChecksDefinition)
]


def _resources(data_dir):
    return {
        "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir)),
        "taxonomy": TaxonomyResource(),
        "llm": LLMResource(backend="offline"),
        "embedder": EmbedderResource(),
        "sandbox": SandboxResource(label=LABEL),
    }


def _run_config(n=4):
    return {
        "ops": {
            "intents": {"config": {"intents_per_domain": 12}},
            "dialogues": {"config": {"dialogues_per_partition": n, "concurrency": 2}},
        }
    }


@pytest.fixture(scope="module", autouse=True)
def engine():
    require_docker()
    yield
    assert docker_client().api.containers(all=True, filters={"label": LABEL}) == []


def _materialize_intents(data_dir, instance):
    assert materialize(
        [intents], partition_key="File-IO", resources=_resources(data_dir), instance=instance,
        run_config={"ops": {"intents": {"config": {"intents_per_domain": 12}}}},
    ).success  # fmt: skip


def _materialize_stages(data_dir, instance, **kw):
    return materialize(
        [intents.to_source_asset(), dialogues, executed_traces, sft_dataset, *CHECKS],
        selection=[dialogues, executed_traces, sft_dataset, *CHECKS],
        partition_key=KEY,
        resources=_resources(data_dir),
        instance=instance,
        **{"run_config": {"ops": {"dialogues": _run_config()["ops"]["dialogues"]}}, **kw},
    )


def test_dialogues_and_traces_land_with_their_checks(tmp_path):
    instance = DagsterInstance.ephemeral()
    _materialize_intents(tmp_path, instance)
    result = _materialize_stages(tmp_path, instance)
    assert result.success
    frame = pl.read_parquet(tmp_path / "dialogues" / "2026-11-24" / "File-IO.parquet")
    assert frame.height == 4 and (frame["status"] == "completed").all()
    traces = pl.read_parquet(tmp_path / "executed_traces" / "2026-11-24" / "File-IO.parquet")
    assert traces.height == 4
    assert set(traces["trajectory_id"]) == set(frame["trajectory_id"])
    joined = traces.join(frame, on="trajectory_id")
    assert (joined["n_steps"] == joined["tool_calls"]).all()
    assert (traces["label"] == "verified").all(), traces.select("trajectory_id", "task_verdicts")
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    for blocking in ("message_schema_valid", "role_drift_rate", "every_tool_call_executed"):
        assert evaluations[blocking], blocking
    meta = result.asset_materializations_for_node("dialogues")[0].metadata
    assert meta["completed"].value == 4 and meta["tool_calls_mean"].value > 10
    assert meta["workspaces"].value == 4 and meta["workspace_queue_wait_s_mean"].value >= 0
    summary = meta["summary"].value
    assert "**4 of 4 dialogues completed**" in summary and "| user turns, mean |" in summary
    assert "| user turns | dialogues |" in summary and "| prompt tokens | 0 |" in summary
    first = frame.row(0, named=True)
    assert first["trajectory_id"] in meta["sample_trajectory"].value
    assert "**assistant → `" in meta["sample_trajectory"].value
    schema = {c.name: c.description for c in meta["dagster/column_schema"].schema.columns}
    assert "JSON string" in schema["messages"] and schema["status"].startswith("completed")
    meta = result.asset_materializations_for_node("executed_traces")[0].metadata
    assert meta["workspaces"].value == 4
    assert "**4 of 4 trajectories verified**" in meta["summary"].value
    assert "| verified | 4 |" in meta["summary"].value
    assert "| step | task | tool | label |" in meta["sample_trajectory"].value
    # Each check result names its partition, its figure and the target.
    described = {e.check_name: e.description for e in result.get_asset_check_evaluations()}
    assert described["tool_calls_mean"].startswith("2026-11-24|File-IO: tool calls ")
    assert "(target 29.26 ± " in described["tool_calls_mean"]
    assert described["every_tool_call_executed"].endswith("(target 0 and 0): passed")

    # The end of the road: training records, checked, then exported for trainers.
    records = pl.read_parquet(tmp_path / "sft_dataset" / "2026-11-24" / "File-IO.parquet")
    assert records.height == 4 and set(records["label"]) == {"verified"}
    for check in ("sft_records_render", "sft_no_duplicates", "sft_dataset_not_empty",
                  "sft_token_lengths", "user_queries_well_formed"):  # fmt: skip
        assert evaluations[check], check
    meta = result.asset_materializations_for_node("sft_dataset")[0].metadata
    assert meta["records"].value == 4 and "| user turns, mean |" in meta["summary"].value
    schema = {c.name: c.description for c in meta["dagster/column_schema"].schema.columns}
    assert "JSON string" in schema["messages"]
    out = tmp_path / "export"
    exported = materialize(
        [sft_dataset.to_source_asset(), sft_export], partition_key="2026-11-24",
        resources=_resources(tmp_path), instance=instance,
        run_config={"ops": {"sft_export": {"config": {"out_dir": str(out)}}}},
    )  # fmt: skip
    assert exported.success
    lines = (out / "openai" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert all(openai_format_errors(json.loads(line)) == [] for line in lines)
    assert "# ISE trajectories 2026-11-24" in (out / "README.md").read_text()


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from dagster import AssetChecksDefinition, DagsterInstance, MultiPartitionKey, materialize
    sys.path.insert(0, {tests!r})
    from stages.test_stage_assets import KEY, _resources, _run_config
    from ise_dagster.assets.dialogues import dialogues
    from ise_dagster.assets.intents import intents
    materialize([intents.to_source_asset(), dialogues], selection=[dialogues], partition_key=KEY,
                resources=_resources({data!r}), instance=DagsterInstance.ephemeral(),
                run_config={{"ops": {{"dialogues": _run_config(8)["ops"]["dialogues"]}}}})
    """
)


def test_killed_partition_leaves_nothing_and_resumes_to_the_same_rows(tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    instance = DagsterInstance.ephemeral()
    for d in (killed_dir, clean_dir):
        _materialize_intents(d, instance)
    script = KILLED_RUN.format(tests=os.path.dirname(os.path.dirname(__file__)),
                               data=str(killed_dir))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    client = docker_client()
    deadline = time.time() + 120
    while not client.api.containers(filters={"label": LABEL}) and time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)  # mid-partition: some dialogues done, others in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    out = killed_dir / "dialogues" / "2026-11-24"
    assert not out.exists() or not any(out.iterdir()), "a killed run left output behind"

    args = dict(selection=[dialogues], partition_key=KEY, instance=instance,
                run_config={"ops": {"dialogues": _run_config(8)["ops"]["dialogues"]}})  # fmt: skip
    for d in (killed_dir, clean_dir):
        assert materialize([intents.to_source_asset(), dialogues], resources=_resources(d),
                           **args).success  # fmt: skip
    resumed = _comparable(pl.read_parquet(out / "File-IO.parquet"))
    clean = _comparable(pl.read_parquet(clean_dir / "dialogues/2026-11-24/File-IO.parquet"))
    assert resumed.height == 8 and resumed["trajectory_id"].n_unique() == 8
    assert resumed.equals(clean)


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """What a re-run must reproduce: the same trajectories, statuses and counts, and the same
    sequence of messages (role, tool, success). Observed text may differ: real commands print
    wall-clock times, commit hashes and test durations."""

    def shape(messages: str) -> str:
        return json.dumps(
            [(m["role"], m.get("name"), m.get("success")) for m in json.loads(messages)]
        )

    return frame.drop("duration_s", "final_output").with_columns(
        pl.col("messages").map_elements(shape, return_dtype=pl.String)
    )


def test_an_unreachable_engine_fails_the_step_with_its_own_message(tmp_path, monkeypatch):
    instance = DagsterInstance.ephemeral()
    _materialize_intents(tmp_path, instance)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = _materialize_stages(tmp_path, instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "dialogues"  # the asset step, not resource set-up
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    chain, error = {}, failure.step_failure_data.error
    while error is not None:
        chain[error.cls_name], error = error.message, error.cause
    assert "DagsterResourceFunctionError" not in chain, chain
    assert "cannot reach the Docker engine at unix://" in chain["Failure"]  # the headline
