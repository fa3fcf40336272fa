"""The export directory: what trainers load, and that it never mixes or half-writes."""

import json

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from ise_dagster import schemas
from ise_dagster.cli import main
from ise_dagster.sft.export import HF_DIR, MANIFEST, OPENAI_FILE, ExportError, export_dataset
from ise_dagster.sft.openai_format import openai_format_errors
from ise_dagster.sft.records import chat_inputs
from ise_dagster.sft.templates import render
from ise_dagster.stages.sft import build_sft_dataset
from ise_dagster_tests.sft.fixtures import dialogue_row, frames, stage2_messages, trace_row


def _partition(n=3, domain="File-IO"):
    rows = [dialogue_row(f"{domain}-{i}", stage2_messages(f"{domain}{i}"), domain=domain)
            for i in range(n)]  # fmt: skip
    return build_sft_dataset(*frames(rows, [trace_row(r) for r in rows])).frame


def test_the_export_holds_jsonl_parquet_a_card_and_a_manifest(tmp_path):
    out = tmp_path / "export"
    summary = export_dataset([_partition(3), _partition(2, "Web-Extraction")], out)
    assert summary.records == 5
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "README.md", f"{HF_DIR}/train-00000.parquet", f"{HF_DIR}/train-00001.parquet",
        OPENAI_FILE, MANIFEST,
    }  # fmt: skip
    lines = [json.loads(line) for line in (out / OPENAI_FILE).read_text().splitlines()]
    assert len(lines) == 5
    assert all(openai_format_errors(line) == [] for line in lines)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["records"] == 5 and manifest["dates"] == ["2026-11-24"]
    assert not list(tmp_path.glob(".export.*"))  # no temporary directory left behind


def test_datasets_loads_the_parquet_and_rows_reach_a_chat_template_unchanged(tmp_path):
    from datasets import load_dataset

    part = _partition(3)
    export_dataset([part], tmp_path / "out", formats=["hf"])
    ds = load_dataset("parquet", data_files=str(tmp_path / "out" / HF_DIR / "*.parquet"),
                      split="train",
                      cache_dir=str(tmp_path / "hf-cache"))  # fmt: skip
    assert ds.num_rows == 3
    for loaded, stored in zip(ds, part.iter_rows(named=True), strict=True):
        assert chat_inputs(loaded) == chat_inputs(stored)
        messages, tools = chat_inputs(loaded)
        args = [c["function"]["arguments"] for m in messages for c in m.get("tool_calls", [])]
        assert args[:2] == [{"cmd": "ls -la", "cwd": "t1"}, {"path": "t1/a.csv"}]
        assert "<tool_response>" in render("qwen2.5-instruct", messages, tools)
        assert loaded["trajectory_id"] == stored["trajectory_id"]


def test_the_card_has_hub_front_matter_and_the_statistics(tmp_path):
    export_dataset([_partition(3)], tmp_path / "out", title="ISE trajectories test")
    card = (tmp_path / "out" / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["license"] == "apache-2.0" and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    assert "| user turns, mean | 2.00 | 8.12 |" in body
    assert "| verified | 3 |" in body and "| File-IO | 3 |" in body
    assert "3 assistant turns carry 2 or more parallel tool calls" in body
    assert "offline-user+playbook-agent" in body


def test_the_cards_loader_works_without_this_package(tmp_path):
    part = _partition(2)
    export_dataset([part], tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("ds = load_dataset", 1)[0]
    namespace: dict = {}
    exec(code.replace("from datasets import load_dataset", ""), namespace)
    for row in part.iter_rows(named=True):
        assert namespace["chat_inputs"](row) == chat_inputs(row)


def test_split_parallel_calls_applies_to_both_formats(tmp_path):
    export_dataset([_partition(2)], tmp_path / "out", split_parallel=True)
    lines = [json.loads(x) for x in (tmp_path / "out" / OPENAI_FILE).read_text().splitlines()]
    assert all(len(m.get("tool_calls", [])) <= 1 for line in lines for m in line["messages"])
    assert all(openai_format_errors(line) == [] for line in lines)
    assert "Parallel tool calls were split" in (tmp_path / "out" / "README.md").read_text()


def test_a_directory_with_other_files_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="already holds files; pass --overwrite"):
        export_dataset([_partition(1)], out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # untouched
    export_dataset([_partition(1)], out, overwrite=True)
    assert not (out / "notes.txt").exists()  # replaced whole, never mixed
    assert (out / MANIFEST).exists()


def test_a_failing_export_leaves_the_previous_one_intact(tmp_path):
    out = tmp_path / "out"
    export_dataset([_partition(2)], out)
    before = (out / OPENAI_FILE).read_text()

    def frames_then_crash():
        yield _partition(1)
        raise RuntimeError("killed mid-export")

    with pytest.raises(RuntimeError, match="killed mid-export"):
        export_dataset(frames_then_crash(), out, overwrite=True)
    assert (out / OPENAI_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_dataset_exports_empty_valid_files(tmp_path):
    summary = export_dataset([_partition(0)], tmp_path / "out")
    assert summary.records == 0
    assert (tmp_path / "out" / OPENAI_FILE).read_text() == ""
    # `datasets` refuses an empty split ("corresponds to no data"); the shard keeps the schema.
    empty = pl.read_parquet(tmp_path / "out" / HF_DIR / "train-00000.parquet")
    assert empty.height == 0 and empty.schema == schemas.SFT_DATASET
    assert "No records." in (tmp_path / "out" / "README.md").read_text()


def test_ise_export_reads_materialized_partitions(tmp_path):
    data = tmp_path / "data"
    (data / "sft_dataset" / "2026-11-24").mkdir(parents=True)
    _partition(2).write_parquet(data / "sft_dataset" / "2026-11-24" / "File-IO.parquet")
    out = tmp_path / "out"
    args = ["export", "--date", "2026-11-24", "--out", str(out), "--data-dir", str(data)]
    result = CliRunner().invoke(main, [*args, "--format", "openai"])
    assert result.exit_code == 0, result.output
    assert "exported 2 records from 1 partitions" in result.output
    assert not (out / HF_DIR).exists() and (out / OPENAI_FILE).exists()
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "pass --overwrite" in again.output
    missing = CliRunner().invoke(main, [*args[:2], "2026-11-25", *args[3:], "--overwrite"])
    assert missing.exit_code != 0 and "no sft_dataset partitions for 2026-11-25" in missing.output
