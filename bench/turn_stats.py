"""Stage 2 turn statistics against the paper's, over a sample of every domain.

.venv/bin/python bench/turn_stats.py [--per-domain 12] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl

from ise_dagster.config import NEAR_DUP_THRESHOLD, ComplexityMix
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages.dialogues import DialogueSettings, paper_comparison, simulate_partition
from ise_dagster.stages.intents import generate_intents
from ise_dagster.taxonomy import load_taxonomy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-domain", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    tax = load_taxonomy()
    writer, embedder = OfflineIntentWriter(tax), get_embedder()
    intents = pl.concat(
        generate_intents(tax, d, args.per_domain, 0, ComplexityMix().as_dict(), writer,
                         embedder, NEAR_DUP_THRESHOLD).frame
        for d in tax.domain_ids
    )  # fmt: skip
    sandbox = SandboxResource(label="ise.sandbox.turn-stats")
    started = time.perf_counter()
    frame, counts = simulate_partition(
        intents, "2026-11-24", tax, sandbox, DialogueSettings(),
        concurrency=args.concurrency, progress=lambda m: None,
    )  # fmt: skip
    sandbox.close()
    done = frame.filter(status="completed")
    calls_per_message = done["tool_calls"].sum() / sum(
        sum(1 for m in json.loads(ms) if m.get("tool_calls")) for ms in done["messages"]
    )
    print(f"{done.height} dialogues in {time.perf_counter() - started:.0f}s; statuses {counts}")
    rows = paper_comparison(done)
    print("| statistic | ours | paper | diff |\n|---|---|---|---|")
    for name, ours, paper in rows:
        print(f"| {name} | {ours:.2f} | {paper:.2f} | {(ours - paper) / paper:+.1%} |")
    print(f"tool calls per assistant tool-call message: {calls_per_message:.2f}")


if __name__ == "__main__":
    main()
