"""The real pipeline on a real model: Gemma 3 270M (and Qwen2.5-Coder-0.5B) behind the
llama.cpp server.

The model is tiny, so these tests assert structure (rows, tool calls, labels, cache figures),
never the quality of the text.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from ise_dagster.assets.dialogues import dialogues
from ise_dagster.assets.intents import intents
from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.llm.cache import RequestCache
from ise_dagster.llm.client import LLMUnavailableError
from ise_dagster.llm.local_server import LocalServer
from ise_dagster.resources import EmbedderResource, LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource, docker_client
from ise_dagster.stages.dialogues import DialogueSettings, simulate
from ise_dagster.stages.guards import DEGENERATE_STATUSES
from ise_dagster.stages.traces import replay
from ise_dagster_tests.helpers import local_llm_resource as llm_resource
from ise_dagster_tests.helpers import require_docker, start_or_skip

pytestmark = [pytest.mark.llm, pytest.mark.docker, pytest.mark.slow]
LABEL = "ise.sandbox.test-llm"
DATE, DOMAIN = "2026-11-24", "File-IO"
KEY = MultiPartitionKey({"date": DATE, "domain": DOMAIN})


def resources(data_dir: Path, llm: LLMResource) -> dict:
    return {
        "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir)),
        "taxonomy": TaxonomyResource(),
        "llm": llm,
        "embedder": EmbedderResource(),
        "sandbox": SandboxResource(label=LABEL),
    }


@pytest.fixture(scope="module")
def engine():
    require_docker()
    yield
    assert docker_client().api.containers(all=True, filters={"label": LABEL}) == []


@pytest.fixture(scope="module")
def offline_intents(tmp_path_factory) -> Path:
    """A File-IO intents partition from the offline writer, as Stage 2's input."""
    data = tmp_path_factory.mktemp("data")
    offline = {
        **resources(data, LLMResource(backend="offline")),
    }
    assert materialize([intents], partition_key=DOMAIN, resources=offline,
                       run_config={"ops": {"intents": {"config": {"intents_per_domain": 12}}}},
                       instance=DagsterInstance.ephemeral()).success  # fmt: skip
    return data


def test_intents_partition_is_written_by_the_model(local_llm, tmp_path):
    llm = llm_resource(local_llm.base_url, tmp_path / "cache")
    result = materialize(
        [intents], partition_key=DOMAIN, resources=resources(tmp_path, llm),
        run_config={"ops": {"intents": {"config": {"intents_per_domain": 1}}}},
        instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    frame = pl.read_parquet(tmp_path / "intents" / f"{DOMAIN}.parquet")
    assert frame.height == 1
    assert frame["natural_language_intent"].str.len_chars().min() >= 20
    assert frame["writer"][0].startswith("openai-writer@gemma3-270m/intent_writer.v1:")
    meta = result.asset_materializations_for_node("intents")[0].metadata
    assert meta["llm_backend"].value == "openai"
    assert meta["llm_paid_calls"].value >= frame.height
    assert meta["llm_prompt_tokens"].value > 0 and meta["llm_completion_tokens"].value > 0
    assert meta["llm_cache_bytes_written"].value > 0


def _one_intent(data: Path) -> dict:
    return (
        pl.read_parquet(data / "intents" / f"{DOMAIN}.parquet").sort("intent_id").row(0, named=True)
    )


# Gemma under chatml-function-calling; Qwen on its own template, whose calls come back as text
# and are parsed into native calls.
@pytest.mark.parametrize("server", ["local_llm", "local_qwen"])
def test_a_dialogue_runs_real_tool_calls_and_replays(
    server, request, offline_intents, engine, tmp_path
):
    local_llm = request.getfixturevalue(server)
    llm = llm_resource(local_llm.base_url, tmp_path / "cache", model=local_llm.model)
    sandbox = SandboxResource(label=LABEL)
    intent = _one_intent(offline_intents)
    row = simulate(intent, DATE, TaxonomyResource().load(), sandbox,
                   DialogueSettings(max_user_turns=2), llm.user_simulator_factory(),
                   llm.agent_factory())  # fmt: skip
    assert row["generator"] == "openai-user+openai-agent"
    # Any ending the loop labels (a tiny model may well write a degenerate dialogue).
    assert row["status"] in ("completed", "turn_cap", *DEGENERATE_STATUSES), row["error"]
    assert row["tool_calls"] >= 1 and row["llm_calls"] >= 3 and row["prompt_tokens"] > 0
    messages = json.loads(row["messages"])
    assert messages[0]["role"] == "system" and "/workspace" in messages[0]["content"]
    ids = {c["id"] for m in messages for c in m.get("tool_calls") or []}
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    assert {m["tool_call_id"] for m in tool_msgs} == ids
    executed = [json.loads(m["content"]) for m in tool_msgs if m["name"] == "exec"]
    assert any("exit_code" in c for c in executed), "no exec really ran"
    # Stage 3 replays the same calls in a fresh container.
    trace = replay({**row, "status": "completed"}, sandbox)
    assert trace["n_steps"] == row["tool_calls"]
    assert trace["label"] in ("verified", "failed", "non_reproducible")


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from dagster import DagsterInstance, materialize
    sys.path.insert(0, {tests!r})
    from llm.test_llm_pipeline import KEY, llm_resource, resources, RUN_CONFIG
    from ise_dagster.assets.dialogues import dialogues
    from ise_dagster.assets.intents import intents
    llm = llm_resource({url!r}, Path({cache!r}))
    materialize([intents.to_source_asset(), dialogues], selection=[dialogues], partition_key=KEY,
                resources=resources(Path({data!r}), llm), instance=DagsterInstance.ephemeral(),
                run_config=RUN_CONFIG)
    """
)
RUN_CONFIG = {"ops": {"dialogues": {"config": {"dialogues_per_partition": 3, "concurrency": 1,
                                               "max_user_turns": 2}}}}  # fmt: skip


def _entries(cache: Path) -> set[str]:
    return {p.stem for p in cache.rglob("*.json")}


def test_killed_run_resumes_from_the_cache_without_paying_twice(
    local_llm, offline_intents, engine, tmp_path
):
    cache = tmp_path / "cache"
    script = KILLED_RUN.format(tests=str(Path(__file__).parents[1]), url=local_llm.base_url,
                               cache=str(cache), data=str(offline_intents))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while len(_entries(cache)) < 8 and time.time() < deadline:  # a dialogue done, one going
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = offline_intents / "dialogues" / DATE / f"{DOMAIN}.parquet"
    assert not out.exists(), "a killed run left output behind"
    before = _entries(cache)
    assert all(RequestCache(cache).get(k)[0] is not None for k in before)  # no torn entries

    llm = llm_resource(local_llm.base_url, cache)
    result = materialize([intents.to_source_asset(), dialogues], selection=[dialogues],
                         partition_key=KEY, resources=resources(offline_intents, llm),
                         instance=DagsterInstance.ephemeral(), run_config=RUN_CONFIG)  # fmt: skip
    assert result.success
    meta = {k: v.value for k, v in result.asset_materializations_for_node("dialogues")[0]
            .metadata.items()}  # fmt: skip
    new = _entries(cache) - before
    # Every paid call wrote a new key: none of the killed run's answers was bought again.
    # (Dialogues labeled as model-side failures are not checkpointed.)
    checkpoints = 3 - meta["resumed_from_checkpoint"] - meta["labeled_llm_failures"]
    assert meta["llm_paid_calls"] == len(new) - checkpoints
    assert meta["llm_cached_calls"] + meta["resumed_from_checkpoint"] > 0
    frame = pl.read_parquet(out)
    assert frame.height + meta["discarded_turn_cap"] == 3
    assert frame["trajectory_id"].n_unique() == frame.height


def test_server_stopped_mid_run_retries_then_fails_cleanly(offline_intents, engine, tmp_path):
    server = start_or_skip(LocalServer(model="gemma3-270m", progress=lambda m: None))
    cache = tmp_path / "cache"
    llm = llm_resource(server.base_url, cache, max_attempts=3, backoff_s=0.2)
    sandbox = SandboxResource(label=LABEL)
    intent = _one_intent(offline_intents)
    taxonomy = TaxonomyResource().load()

    def run():
        return simulate(intent, DATE, taxonomy, sandbox, DialogueSettings(max_user_turns=2),
                        llm.user_simulator_factory(), llm.agent_factory())  # fmt: skip

    stopper = threading.Thread(target=lambda: (_wait_for(cache, 2), server.stop()))
    stopper.start()
    try:
        with pytest.raises(LLMUnavailableError, match="failed 3 times"):
            run()
        stopper.join()
        paid_before = llm.client().total.paid_calls
        assert paid_before >= 2 and llm.client().total.retries >= 2
        kept = _entries(cache)
        assert all(RequestCache(cache).get(k)[0] is not None for k in kept)

        server.restart()
        llm2 = llm_resource(server.base_url, cache)
        row = simulate(intent, DATE, taxonomy, sandbox, DialogueSettings(max_user_turns=2),
                       llm2.user_simulator_factory(), llm2.agent_factory())  # fmt: skip
        # The first user turn and the agent's first step do not depend on any observation,
        # so at least those replay from the cache.
        assert row["llm_cached_calls"] >= 2
    finally:
        server.stop()
        llm.client().close()


def _wait_for(cache: Path, n: int, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while len(_entries(cache)) < n and time.time() < deadline:
        time.sleep(0.05)
