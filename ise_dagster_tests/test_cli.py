import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from ise_dagster.cli import main
from ise_dagster_tests.llm.scripted_server import Script, completion, serve


@pytest.mark.docker
@pytest.mark.slow
def test_ise_run_materializes_all_three_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    result = CliRunner().invoke(
        main, ["run", "--domain", "Web-Extraction", "--intents-per-domain", "8",
               "--dialogues-per-domain", "2", "--date", "2026-11-20", "--data-dir", str(data)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[1/1] intents Web-Extraction: ok" in result.output
    # 8 intents cannot reach a Vendi score of 10: the smoke run says so instead of failing.
    assert "8 intents per domain are too few to judge diversity" in result.output
    assert "checks 5/5 passed" in result.output
    assert "8 intents < 43956" in result.output  # the pool check speaks up
    assert pl.read_parquet(data / "intents" / "Web-Extraction.parquet").height == 8
    assert str(data / "intent_pool.parquet") in result.output
    stage23 = "dialogues + executed_traces + sft_dataset 2026-11-20|Web-Extraction: ok"
    assert stage23 in result.output
    assert "dialogues on 2026-11-20: 2 completed" in result.output
    assert "tool calls, mean" in result.output and "executed traces: verified" in result.output
    traces = pl.read_parquet(data / "executed_traces" / "2026-11-20" / "Web-Extraction.parquet")
    assert traces.height == 2
    # The run ends with a training dataset and says where it is.
    export = data / "exports" / "2026-11-20"
    assert f"training dataset: 2 records in {export}" in result.output
    assert str(export / "openai" / "train.jsonl") in result.output
    assert len((export / "openai" / "train.jsonl").read_text().splitlines()) == 2
    assert list((tmp_path / "home").iterdir())  # runs recorded for the UI


def test_ise_run_rejects_an_unknown_domain(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(main, ["run", "--domain", "Astrology"])
    assert result.exit_code != 0
    assert "unknown domain(s) ['Astrology']" in result.output


def test_a_failed_step_is_reported_with_its_reason(capsys):
    from dagster import asset, materialize

    from ise_dagster.cli import _report

    @asset
    def boom() -> None:
        raise RuntimeError("the disk is full")

    result = materialize([boom], raise_on_error=False)
    with pytest.raises(SystemExit):
        _report("boom", result, 0.0)
    captured = capsys.readouterr()
    assert "boom: FAILED" in captured.out
    assert "RuntimeError: the disk is full" in captured.err


@pytest.mark.docker
@pytest.mark.slow
def test_bench_agent_prints_pass_at_1_and_keeps_the_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    args = ["bench-agent", "--domain", "Multimedia", "--tasks-per-domain", "1"]
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "agent_benchmark: ok" in result.output
    assert "| Multimedia | 1 | 1 | 1.0 |" in result.output  # the offline reference passes
    rows = pl.read_parquet(data / "agent_benchmark.parquet")
    assert rows.height == 1 and rows["passed"].all()


def test_bench_agent_rejects_an_unknown_domain(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(main, ["bench-agent", "--domain", "Astrology"])
    assert result.exit_code != 0 and "unknown domain(s) ['Astrology']" in result.output


@pytest.mark.docker
@pytest.mark.slow
def test_bench_agent_with_the_offline_user_sends_the_model_agent_calls_only(tmp_path):
    script = Script(default=(200, {}, completion("I could not find the files.")))
    server, url = serve(script)
    # A process of its own, as a user runs it: the resources read the environment when the
    # definitions are imported, which in this test process happened long ago.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "ISE_LLM_BACKEND": "openai",
           "ISE_LLM_BASE_URL": url, "ISE_LLM_MODEL": "scripted", "OPENAI_API_KEY": "k"}  # fmt: skip
    data = tmp_path / "data"
    args = ["bench-agent", "--domain", "File-IO", "--tasks-per-domain", "1", "--offline-user"]
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("ise")), *args, "--data-dir", str(data)],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pl.read_parquet(data / "agent_benchmark.parquet")
    assert rows["user_model"].to_list() == ["offline"]
    assert rows["agent_model"].to_list() == ["scripted"] and not rows["passed"].any()
    chats = [r for r in script.requests if "messages" in r]
    assert chats and all("tools" in r for r in chats)  # agent requests, never the user's
