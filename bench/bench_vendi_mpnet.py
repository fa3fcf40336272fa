"""Vendi of the offline intent pool on all-mpnet-base-v2, the paper's embedder (issue 11).

Builds the default pool the way the pipeline does (10 domains x 4,396 intents, offline writer,
wordllama-256 dedup, seed 0), draws one seeded random permutation of it, and scores its first
2,500 / 5,000 / 10,000 rows with the numpy all-mpnet-base-v2 and, for comparison, with the
pipeline's wordllama-256 vectors of the same rows (Vendi q=1 through `score_dual`).

mpnet runs at a few sentences/s on 2 cores (the intents average ~200 tokens), so 10,000
intents take about an hour; the embeddings are saved in chunks under --cache and a rerun
resumes where the last one stopped.

    nice -n 10 .venv/bin/python bench/bench_vendi_mpnet.py [--n 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ise_dagster.config import PAPER_UNIQUE_INTENTS, PAPER_VENDI_MPNET, ComplexityMix, IntentsConfig
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.diversity.mpnet import MPNetEncoder
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.stages.intents import generate_intents
from ise_dagster.taxonomy import load_taxonomy

CHUNK = 250


def build_pool() -> tuple[list[str], np.ndarray]:
    """The default `intents` partitions, concatenated: texts and their wordllama-256 rows."""
    cfg = IntentsConfig()
    tax = load_taxonomy()
    writer = OfflineIntentWriter(tax)
    wordllama = get_embedder("wordllama-256")
    texts: list[str] = []
    vectors = []
    for domain in tax.domain_ids:
        batch = generate_intents(
            tax, domain, cfg.intents_per_domain, cfg.seed, ComplexityMix().as_dict(), writer,
            wordllama, cfg.near_dup_threshold,
        )  # fmt: skip
        texts += batch.frame["natural_language_intent"].to_list()
        vectors.append(batch.embeddings)
    return texts, np.vstack(vectors)


def embed_resumable(
    encoder: MPNetEncoder, texts: list[str], cache: Path
) -> tuple[np.ndarray, int, float]:
    """Embeds in chunks saved under `cache`; returns (vectors, texts embedded now, seconds)."""
    cache.mkdir(parents=True, exist_ok=True)
    out, done_now, seconds = [], 0, 0.0
    started = time.perf_counter()
    for i in range(0, len(texts), CHUNK):
        path = cache / f"chunk-{i // CHUNK:04d}.npy"
        if path.exists():
            out.append(np.load(path))
            continue
        t0 = time.perf_counter()
        vec = encoder.embed(texts[i : i + CHUNK])
        seconds += time.perf_counter() - t0
        done_now += len(vec)
        np.save(path.with_suffix(".tmp.npy"), vec)
        os.replace(path.with_suffix(".tmp.npy"), path)  # a killed run leaves no partial chunk
        out.append(vec)
        left = len(texts) - i - len(vec)
        rate = done_now / seconds
        print(
            f"  {i + len(vec):>6}/{len(texts)} embedded, {rate:.2f}/s, "
            f"ETA {left / rate / 60:.0f} min (wall {(time.perf_counter() - started) / 60:.0f} min)",
            file=sys.stderr,
            flush=True,
        )
    return np.vstack(out), done_now, seconds


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{platform.machine()}, {cpu}, {len(os.sched_getaffinity(0))} cores"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000, help="largest sample size")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample's permutation")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench-vendi-mpnet"))
    args = ap.parse_args()
    sizes = sorted({s for s in (2_500, 5_000, args.n) if s <= args.n})
    load_start = os.getloadavg()

    t0 = time.perf_counter()
    texts, wl = build_pool()
    pool_s = time.perf_counter() - t0
    # One permutation: each prefix is itself a uniform random sample, so the sizes nest.
    idx = np.random.default_rng(args.seed).permutation(len(texts))[: args.n]
    sample = [texts[i] for i in idx]
    key = hashlib.sha256("\x1e".join(sample).encode()).hexdigest()[:12]

    t0 = time.perf_counter()
    encoder = MPNetEncoder()
    load_s = time.perf_counter() - t0
    tokens = [len(x) for x in encoder.tokenize(sample)]
    mp, embedded, embed_s = embed_resumable(encoder, sample, args.cache / f"{key}-mpnet")

    print(f"machine: {machine()}; load average at start {load_start[0]:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    print(
        f"pool: {len(texts):,} intents (default intents config, offline writer, built in "
        f"{pool_s:.0f} s); sample: default_rng({args.seed}).permutation(pool)[:n]"
    )
    print(
        f"mpnet: weights loaded in {load_s:.1f} s; sample tokens mean {np.mean(tokens):.0f}, "
        f"max {max(tokens)}, truncated at 384: {sum(t >= 384 for t in tokens)}"
    )
    if embedded:
        print(
            f"mpnet embedding: {embedded:,} intents in {embed_s / 60:.1f} min = "
            f"{embedded / embed_s:.2f} sentences/s, {sum(tokens[-embedded:]) / embed_s:.0f} "
            "tokens/s (this run)"
        )
    else:
        print("mpnet embedding: all chunks from the cache")
    print()
    print("| n | Vendi all-mpnet-base-v2 | Vendi wordllama-256 |")
    print("|---|---|---|")
    for n in sizes:
        print(f"| {n:,} | {vendi_score(mp[:n]):.2f} | {vendi_score(wl[idx[:n]]):.2f} |")
    print(f"| {len(texts):,} (whole pool) | - | {vendi_score(wl):.2f} |")
    print(f"| paper, {PAPER_UNIQUE_INTENTS:,} | {PAPER_VENDI_MPNET} | - |")
    print()
    # What the offline writer's content is made of: its tasks' fixed goal sentences.
    tax = load_taxonomy()
    goals = [t.goal for d in tax.domain_ids for t in tax.tasks_in(d)]
    g = encoder.embed(goals)
    rng = np.random.default_rng(args.seed)
    mixes = np.stack([g[rng.choice(len(g), 3, replace=False)].mean(0) for _ in range(5_000)])
    print(f"mpnet Vendi of the {len(goals)} task goals alone: {vendi_score(g):.2f}; of 5,000 means "
          f"of 3 random goal vectors: {vendi_score(mixes):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
