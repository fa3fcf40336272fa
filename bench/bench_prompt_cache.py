"""Prompt tokens a one-slot llama.cpp server re-evaluates per call, with a partition's
dialogues interleaved (N at a time, as before issue 11) against one at a time, twice each (what
`LLMResource.dialogue_concurrency` now picks when max_concurrency is 1). Both in one run,
on the same intents, against the same server, request cache off.

llama-cpp-python logs "Llama.generate: H prefix-match hit, remaining R prompt tokens to eval"
per completion: R is what the server had to evaluate again, H what its cache reused.

    .venv/bin/python bench/bench_prompt_cache.py [--dialogues 3] [--turns 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

from ise_dagster.llm.local_server import LocalServer
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages.dialogues import DialogueSettings, simulate_partition
from ise_dagster.stages.intents import intents_frame, sample_specs
from ise_dagster.taxonomy import load_taxonomy
from ise_dagster_tests.helpers import local_llm_resource

HIT = re.compile(rb"(\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
MIX = {"simple": 1.0, "medium": 0.0, "complex": 0.0}  # one task each: short dialogues


def run(server: LocalServer, intents, width: int, turns: int) -> dict:
    llm = local_llm_resource(server.base_url, Path(tempfile.mkdtemp()), cache=False,
                             max_concurrency=1)  # fmt: skip
    sandbox = SandboxResource(label="ise.sandbox.bench-prompt-cache")
    start = server.log_path.stat().st_size
    t0 = time.perf_counter()
    try:
        frame, _ = simulate_partition(
            intents, "2026-12-04", load_taxonomy(), sandbox,
            DialogueSettings(max_user_turns=turns), concurrency=width, progress=lambda _: None,
            user_factory=llm.user_simulator_factory(), agent_factory=llm.agent_factory(),
        )  # fmt: skip
    finally:
        sandbox.close()
        llm.client().close()
    seconds = time.perf_counter() - t0
    with server.log_path.open("rb") as fh:
        fh.seek(start)
        hits = [(int(h), int(r)) for h, r in HIT.findall(fh.read())]
    reused = sum(h for h, _ in hits)
    evaluated = sum(r for _, r in hits)
    return {
        "width": width,
        "calls": len(hits),
        "evaluated_per_call": statistics.fmean(r for _, r in hits) if hits else 0.0,
        "reused_share": reused / (reused + evaluated) if hits else 0.0,
        "seconds": seconds,
        "statuses": dict(frame["status"].value_counts().iter_rows()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=3)
    parser.add_argument("--turns", type=int, default=2, help="max user turns per dialogue")
    args = parser.parse_args()
    tax = load_taxonomy()
    specs = sample_specs(tax, "File-IO", args.dialogues, seed=4, complexity_mix=MIX)
    writer = OfflineIntentWriter(tax)
    intents = intents_frame(specs, writer.write(specs), writer, tax)

    with LocalServer(model="gemma3-270m") as server:  # the model BENCHMARKS.md ran
        # Interleaved, one at a time, then both again in the other order: neither gets the
        # warm-up alone.
        widths = (args.dialogues, 1, 1, args.dialogues)
        rows = [run(server, intents, w, args.turns) for w in widths]
    print(f"# {dt.date.today()} on {platform.node()}: {args.dialogues} File-IO dialogues, "
          f"max {args.turns} user turns, Gemma 3 270M")  # fmt: skip
    print("| dialogues at once | model calls | prompt tokens evaluated per call | "
          "reused from the cache | wall s | statuses |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['calls']} | {r['evaluated_per_call']:.0f} | "
              f"{r['reused_share']:.0%} | {r['seconds']:.0f} | {r['statuses']} |")  # fmt: skip


if __name__ == "__main__":
    main()
