"""Stage 1 at paper scale: 43,956+ intents over all 10 domains on the offline writer.

Prints rows/s, seconds per phase (sample, write, embed, dedup, Vendi, Parquet) and peak
memory. Target on 2 cores: under 60 s and under 2 GiB for the whole pool.

    .venv/bin/python bench/bench_intents.py [--per-domain 4396] [--out /tmp/bench-intents]
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from ise_dagster.config import NEAR_DUP_THRESHOLD, ComplexityMix, IntentsConfig
from ise_dagster.diversity.dedup import nearest_neighbour
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.io.parquet import _write_local_atomic
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.stages.intents import generate_intents
from ise_dagster.taxonomy import load_taxonomy


def main() -> None:
    defaults = IntentsConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-domain", type=int, default=defaults.intents_per_domain)
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench-intents-")))
    args = ap.parse_args()
    (args.out / "intents").mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    tax = load_taxonomy()
    writer = OfflineIntentWriter(tax)
    embedder = get_embedder()
    setup_s = time.perf_counter() - started
    phases = {"sample": 0.0, "write": 0.0, "embed": 0.0, "dedup": 0.0, "vendi": 0.0}
    frames, vectors = [], []
    dropped_exact = dropped_near = 0
    for domain in tax.domain_ids:
        batch = generate_intents(
            tax, domain, args.per_domain, defaults.seed, ComplexityMix().as_dict(), writer,
            embedder, defaults.near_dup_threshold,
        )  # fmt: skip
        for k, v in batch.seconds.items():
            phases[k] += v
        t0 = time.perf_counter()
        _write_local_atomic(batch.frame, args.out / "intents" / f"{domain}.parquet", 3)
        phases["parquet"] = phases.get("parquet", 0.0) + time.perf_counter() - t0
        frames.append(batch.frame)
        vectors.append(batch.embeddings)
        dropped_exact += batch.dropped_exact
        dropped_near += batch.dropped_near

    pool = pl.concat(frames)
    emb = np.vstack(vectors)
    t0 = time.perf_counter()
    pool_vendi = vendi_score(emb)
    phases["pool_vendi"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cross = float(np.mean(nearest_neighbour(emb, pool["domain"].to_numpy()) > NEAR_DUP_THRESHOLD))
    phases["pool_cross_domain_dedup"] = time.perf_counter() - t0
    total = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores")
    print(f"intents kept: {pool.height} (exact dups dropped {dropped_exact}, near {dropped_near})")
    print(
        f"pool Vendi ({embedder.name}, q=1): {pool_vendi:.2f}; cross-domain near-dup rate "
        f"{cross:.4f}"
    )
    print(f"setup (taxonomy + embedder load): {setup_s:.2f}s")
    for k, v in phases.items():
        print(f"  {k:<24} {v:7.2f}s")
    print(f"total: {total:.1f}s, {pool.height / total:,.0f} rows/s, peak RSS {peak_mib:,.0f} MiB")
    print(f"parquet under {args.out}")


if __name__ == "__main__":
    main()
