"""Write an SFT dataset where trainers look for it: OpenAI fine-tuning JSONL, Hugging Face
Parquet and a dataset card, in one directory.

    <out>/README.md                              dataset card (Hub YAML front matter)
    <out>/data/train-NNNNN.parquet               `datasets.load_dataset("parquet", ...)`
    <out>/openai/train.jsonl                     OpenAI fine-tuning, tool calling
    <out>/ise_export.json                        what was written, for tools and re-runs

Everything is written to a temporary sibling directory and renamed into place, so a killed
export leaves the old directory or the new one, never a mix. One partition is in memory at
a time: memory stays flat in the dataset's size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ise_dagster import schemas
from ise_dagster.sft.card import dataset_card
from ise_dagster.sft.records import openai_jsonl_lines, split_parallel_calls, strip_nulls

MANIFEST = "ise_export.json"
HF_DIR = "data"  # one train-NNNNN.parquet shard per sft_dataset partition
OPENAI_FILE = "openai/train.jsonl"
FORMATS = ("openai", "hf")
BATCH_ROWS = 1000
# Columns the card's statistics need (everything but the messages themselves).
STAT_COLUMNS = [c for c in schemas.SFT_DATASET.names() if c not in ("messages", "tools")]


class ExportError(RuntimeError):
    """The export cannot be written as asked; the message says why and what to do."""


@dataclass
class ExportSummary:
    out: Path
    records: int
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def export_dataset(
    frames: Iterable[pl.DataFrame],
    out: Path,
    *,
    formats: Iterable[str] = FORMATS,
    overwrite: bool = False,
    split_parallel: bool = False,
    title: str = "ISE trajectories",
) -> ExportSummary:
    """Write `frames` (sft_dataset partitions) to `out`. An `out` that holds files is
    refused unless `overwrite`, and then replaced whole."""
    started = time.perf_counter()
    formats = tuple(formats)
    if unknown := sorted(set(formats) - set(FORMATS)):
        raise ExportError(f"unknown export format(s) {unknown}; known: {list(FORMATS)}")
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(
            f"{out} already holds files; pass --overwrite to replace the whole directory "
            "(an export never mixes with other files)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # from a killed export
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        stats = _write(frames, tmp, formats, split_parallel)
        card = dataset_card(stats, title=title, formats=formats, split_parallel=split_parallel)
        (tmp / "README.md").write_text(card)
        files = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
        manifest = {"records": stats.height, "formats": list(formats),
                    "split_parallel_calls": split_parallel,
                    "dates": sorted(set(stats["date"])) if stats.height else [],
                    "files": [str(f) for f in files] + [MANIFEST]}  # fmt: skip
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportSummary(out, stats.height, [out / f for f in files] + [out / MANIFEST],
                         time.perf_counter() - started)  # fmt: skip


def _write(frames, tmp: Path, formats: tuple[str, ...], split_parallel: bool) -> pl.DataFrame:
    """One Parquet shard per input frame, JSONL in batches; returns the stats columns."""
    empty = pl.DataFrame(schema=schemas.SFT_DATASET)
    stats = [empty.select(STAT_COLUMNS)]
    shards = 0
    if "hf" in formats:
        (tmp / HF_DIR).mkdir()
    with contextlib.ExitStack() as stack:
        jsonl = None
        if "openai" in formats:
            (tmp / OPENAI_FILE).parent.mkdir()
            jsonl = stack.enter_context(open(tmp / OPENAI_FILE, "w", encoding="utf-8"))
        for frame in frames:
            if frame.height == 0:
                continue
            if split_parallel:
                frame = _split(frame)
            if "hf" in formats:
                frame.write_parquet(tmp / HF_DIR / f"train-{shards:05d}.parquet",
                                    compression="zstd")  # fmt: skip
                shards += 1
            if jsonl is not None:
                for batch in frame.iter_slices(BATCH_ROWS):
                    jsonl.writelines(line + "\n" for line in openai_jsonl_lines(batch))
            stats.append(frame.select(STAT_COLUMNS))
    if "hf" in formats and shards == 0:  # no records: one empty shard that keeps the schema
        empty.write_parquet(tmp / HF_DIR / "train-00000.parquet")
    return pl.concat(stats)


def _split(batch: pl.DataFrame) -> pl.DataFrame:
    messages = [split_parallel_calls(strip_nulls(m)) for m in batch["messages"].to_list()]
    return batch.with_columns(
        pl.Series("messages", messages, dtype=schemas.SFT_DATASET["messages"]),
        pl.Series("total_turns", [len(m) - 1 for m in messages], dtype=pl.Int64),
        pl.lit(0, dtype=pl.Int64).alias("parallel_call_turns"),
    )


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)  # put the previous export back
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
