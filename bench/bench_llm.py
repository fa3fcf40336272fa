"""LLM client benchmark against the real local llama.cpp server (Gemma 3 270M), one run:

1. client overhead per call: a bare `AsyncOpenAI` loop against `LLMClient.chat` on cache
   misses, the same prompts, interleaved (and the pair order alternated, so neither side
   profits more from drift or from the server reusing the previous prompt's KV cache);
   target: median overhead under 5%;
2. cache-hit replay rate through `LLMClient.chat`; target: at least 1,000 calls/s;
3. a Stage 2 partition (`simulate_partition`, OpenAI user + agent, File-IO intents from the
   offline writer) run once against the server, then again with a new client on the same
   request cache and no dialogue checkpoint, so every model call replays from the cache
   while the tool calls still run in Docker; target: re-run at least 20x faster.

    .venv/bin/python bench/bench_llm.py [--calls 30] [--hits 5000] [--dialogues 50]

Prints a markdown table (rows for BENCHMARKS.md); writes the figures as JSON to
bench/results/bench_llm.json when bench/results exists (or to --json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

from ise_dagster.config import ComplexityMix
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.llm.cache import RequestCache
from ise_dagster.llm.client import LLMClient
from ise_dagster.llm.local_server import LLAMA_CPP_VERSION, LocalServer
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.llm.settings import LLMSettings, ModelSettings
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages.dialogues import DialogueSettings, simulate_partition
from ise_dagster.stages.intents import generate_intents
from ise_dagster.taxonomy import load_taxonomy
from ise_dagster_tests.helpers import local_llm_resource

LABEL = "ise.sandbox.bench-llm"
DATE, DOMAIN = "2026-11-24", "File-IO"
RESULTS = Path(__file__).parent / "results"


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Say a number: {i}"}]


def overhead(server: LocalServer, n: int, hits: int, cache_dir: Path) -> dict[str, Any]:
    """Per-call wall time, bare SDK (a) against our client on cache misses (b)."""
    role = ModelSettings(model=server.model, max_tokens=16, temperature=0, seed=0)
    bare = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    ours = LLMClient(LLMSettings(base_url=server.base_url, api_key="x"), cache_dir=cache_dir)
    loop = asyncio.new_event_loop()

    def call_a(msgs: list[dict[str, str]]) -> tuple[float, str | None]:
        t = time.perf_counter()
        r = loop.run_until_complete(
            bare.chat.completions.create(
                model=role.model, messages=msgs, temperature=0, top_p=1.0, max_tokens=16, seed=0
            )  # fmt: skip
        )
        return (time.perf_counter() - t) * 1000, r.choices[0].message.content

    def call_b(msgs: list[dict[str, str]]) -> tuple[float, str | None]:
        t = time.perf_counter()
        c = ours.chat(role, msgs, prompt_version="bench")
        ms = (time.perf_counter() - t) * 1000
        assert not c.cached, "a (b) call hit the cache: it must start empty"
        return ms, c.content

    # Warm-up on other prompts: connections, the /models preflight, the server's first eval.
    for k in range(3):
        w = [{"role": "user", "content": f"Warm up {k}"}]
        call_a(w)
        call_b(w)
    a_ms, b_ms, same = [], [], 0
    for i in range(n):
        order = (call_a, call_b) if i % 2 == 0 else (call_b, call_a)
        out = {}
        for fn in order:
            out[fn] = fn(messages(i))
        a_ms.append(out[call_a][0])
        b_ms.append(out[call_b][0])
        same += out[call_a][1] == out[call_b][1]
    loop.run_until_complete(bare.close())
    loop.close()
    med_a, med_b = statistics.median(a_ms), statistics.median(b_ms)
    result = {
        "calls": n,
        "bare_median_ms": med_a,
        "bare_mean_ms": statistics.fmean(a_ms),
        "client_median_ms": med_b,
        "client_mean_ms": statistics.fmean(b_ms),
        "overhead_median_pct": (med_b - med_a) / med_a * 100,
        "overhead_mean_pct": (statistics.fmean(b_ms) - statistics.fmean(a_ms))
        / statistics.fmean(a_ms)
        * 100,
        # paired: per-prompt difference, robust to prompts that answer with more tokens
        "paired_median_diff_ms": statistics.median(b - a for a, b in zip(a_ms, b_ms, strict=True)),
        "same_answers": same,
    }
    result.update(replay_hits(ours, role, n, hits, cache_dir))
    ours.close()
    return result


def replay_hits(
    ours: LLMClient, role: ModelSettings, n: int, target: int, cache_dir: Path
) -> dict[str, Any]:
    """The same n requests again and again: every call must be a cache hit."""
    done = 0
    t0 = time.perf_counter()
    while done < target:
        for i in range(n):
            c = ours.chat(role, messages(i), prompt_version="bench")
            assert c.cached, f"request {i} missed the cache on replay"
        done += n
    dt = time.perf_counter() - t0
    return {"hit_calls": done, "hit_calls_per_s": done / dt, "hit_us_per_call": dt / done * 1e6,
            "cache_files": sum(1 for _ in cache_dir.rglob("*.json"))}  # fmt: skip


class _Recorder:
    """A checkpoint that never resumes (get is always None, as with checkpoint=None) but
    keeps every finished row, turn_cap ones included, which the returned frame drops."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, intent: dict[str, Any], date: str) -> None:
        return None

    def put(self, intent: dict[str, Any], date: str, row: dict[str, Any]) -> None:
        self.rows[intent["intent_id"]] = row


def partition_rerun(server: LocalServer, n: int, cache_dir: Path) -> dict[str, Any]:
    tax = load_taxonomy()
    batch = generate_intents(tax, DOMAIN, n, 0, ComplexityMix().as_dict(),
                             OfflineIntentWriter(tax), get_embedder(), 0.95)  # fmt: skip
    intents = batch.frame
    sandbox = SandboxResource(label=LABEL)
    sandbox.manager()  # image + sweep outside the timings
    settings = DialogueSettings(max_user_turns=2)
    runs = []
    t_start = time.perf_counter()
    for which in ("first", "re-run"):
        llm = local_llm_resource(server.base_url, cache_dir)  # a new client each run

        def progress(msg: str, which: str = which) -> None:
            print(f"  [{which} {time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

        rec = _Recorder()
        t0 = time.perf_counter()
        frame, counts = simulate_partition(
            intents, DATE, tax, sandbox, settings, concurrency=2, progress=progress,
            user_factory=llm.user_simulator_factory(), agent_factory=llm.agent_factory(),
            checkpoint=rec,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        counts.pop("resumed", None)
        total = llm.client().total
        runs.append({"seconds": seconds, "counts": counts, "kept_rows": frame.height,
                     "calls": total.calls, "cached_calls": total.cached_calls,
                     "paid_calls": total.paid_calls, "completion_tokens": total.completion_tokens,
                     "tool_calls": sum(r["tool_calls"] for r in rec.rows.values()),
                     "messages": {k: r["messages"] for k, r in rec.rows.items()}})  # fmt: skip
        llm.client().close()
    api = sandbox.manager().client.api
    sandbox.close()
    leaked = len(api.containers(all=True, filters={"label": LABEL}))
    # Paid answers longer than any role's max_tokens: llama-cpp-python 0.3.36's
    # chatml-function-calling handler generates tool-call arguments with max_tokens=None,
    # so a degenerate argument runs until the context window is full.
    cache = RequestCache(cache_dir)
    lengths = [(cache.get(p.stem)[0] or {}).get("usage", {}).get("completion_tokens", 0)
               for p in cache_dir.rglob("*.json")]  # fmt: skip
    cap = max(llm.user.max_tokens, llm.agent.max_tokens)
    first, again = runs
    shared = first["messages"].keys() & again["messages"].keys()
    # A dialogue replays whole only when every tool observation came out byte-identical.
    identical = sum(first["messages"][k] == again["messages"][k] for k in shared)
    for r in runs:
        del r["messages"]
    return {
        "dialogues": intents.height,
        "first": first,
        "rerun": again,
        "speedup": first["seconds"] / again["seconds"],
        "rerun_hit_rate": again["cached_calls"] / max(1, again["calls"]),
        "identical_dialogues": identical,
        "containers_leaked": leaked,
        "answers_over_max_tokens": sum(n > cap for n in lengths),
        "longest_answer_tokens": max(lengths, default=0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30, help="distinct requests per method")
    ap.add_argument("--hits", type=int, default=5000, help="cache-hit calls to time (at least)")
    ap.add_argument("--dialogues", type=int, default=50, help="0 skips the partition re-run")
    ap.add_argument(
        "--n-ctx", type=int, default=None, help="server context size (default: DEFAULT_N_CTX)"
    )
    ap.add_argument("--json", type=Path, default=None, help="default: bench/results/ if it exists")
    args = ap.parse_args()
    # wordllama turns on INFO logging for everything; keep the HTTP client quiet.
    for name in ("httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)

    kw = {"n_ctx": args.n_ctx} if args.n_ctx else {}
    server = LocalServer(model="gemma3-270m", progress=print, **kw).start()  # as measured
    try:
        with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
            t0 = time.perf_counter()
            ov = overhead(server, args.calls, args.hits, Path(tmp) / "overhead-cache")
            print(f"overhead + hits: {time.perf_counter() - t0:.1f} s", flush=True)
            part = (
                partition_rerun(server, args.dialogues, Path(tmp) / "partition-cache")
                if args.dialogues
                else None
            )
    finally:
        server.stop()

    machine = (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; llama-cpp-python {LLAMA_CPP_VERSION}, {server.model}, "
        f"--n_threads {server.n_threads}, --n_ctx {server.n_ctx}"
    )
    rows = [
        ("bare AsyncOpenAI, per call (median / mean)",
         f"{ov['bare_median_ms']:.1f} / {ov['bare_mean_ms']:.1f} ms",
         f"{ov['calls']} distinct prompts, max_tokens 16, temperature 0"),
        ("LLMClient.chat, cache miss, per call (median / mean)",
         f"{ov['client_median_ms']:.1f} / {ov['client_mean_ms']:.1f} ms",
         f"same prompts, interleaved; {ov['same_answers']}/{ov['calls']} answers identical"),
        ("client overhead (median / mean)",
         f"{ov['overhead_median_pct']:+.1f}% / {ov['overhead_mean_pct']:+.1f}%",
         f"target < 5%; paired median difference {ov['paired_median_diff_ms']:+.2f} ms"),
        ("cache-hit replay",
         f"{ov['hit_calls_per_s']:,.0f} calls/s",
         f"{ov['hit_calls']} hits, {ov['hit_us_per_call']:.0f} us/call; target >= 1,000/s"),
    ]  # fmt: skip
    if part:
        f, r = part["first"], part["rerun"]
        rows += [
            (f"Stage 2 partition, {part['dialogues']} dialogues, first run",
             f"{f['seconds']:.1f} s",
             f"{f['calls']} model calls ({f['paid_calls']} paid), {f['tool_calls']} tool calls, "
             f"statuses {f['counts']}"),
            ("same partition, re-run from the request cache",
             f"{r['seconds']:.1f} s",
             f"speed-up {part['speedup']:.1f}x (target >= 20x); {r['tool_calls']} tool calls"),
            ("re-run cache hit rate",
             f"{part['rerun_hit_rate']:.1%}",
             f"{r['cached_calls']}/{r['calls']} calls; {r['paid_calls']} paid (observation "
             f"changed); {part['identical_dialogues']}/{part['dialogues']} dialogues identical"),
            ("paid answers longer than max_tokens",
             str(part["answers_over_max_tokens"]),
             f"longest {part['longest_answer_tokens']} tokens: tool-call arguments ignore "
             "max_tokens in llama-cpp-python's chatml-function-calling"),
            ("containers leaked", str(part["containers_leaked"]), "target 0"),
        ]  # fmt: skip

    print(f"\nmachine: {machine}")
    print("| metric | value | note |\n|---|---|---|")
    for metric, value, note in rows:
        print(f"| {metric} | {value} | {note} |")
    out = args.json or (RESULTS / "bench_llm.json" if RESULTS.is_dir() else None)
    if out is not None:
        out.write_text(json.dumps({"machine": machine, "overhead": ov, "partition": part},
                                  indent=2, default=str) + "\n")  # fmt: skip
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
