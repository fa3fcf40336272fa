"""Export throughput and peak memory (issue 10): 10,000 trajectories to OpenAI JSONL + HF
Parquet + card, against a naive converter measured in the same run.

The records are real `sft_dataset` rows (from `make run`) repeated with fresh ids until there
are --n of them, split into partition-sized files as the asset writes them. Each variant
runs in its own process so its peak RSS is its own.

    .venv/bin/python bench/bench_export.py [--source 'data/sft_dataset/*/*.parquet'] [--n 10000]

Target: at least 2,000 records/s and under 1 GiB.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

EXPORT = """
import json, resource, sys, time
from pathlib import Path
import polars as pl
from ise_dagster.sft.export import export_dataset
paths = sorted(Path(sys.argv[1]).glob("*.parquet"))
t = time.perf_counter()
s = export_dataset((pl.read_parquet(p) for p in paths), Path(sys.argv[2]))
print(json.dumps({"records": s.records, "seconds": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The converter a user writes first: load everything, dump rows as they are.
NAIVE = """
import json, resource, sys, time
from pathlib import Path
import polars as pl
t = time.perf_counter()
frame = pl.concat([pl.read_parquet(p) for p in sorted(Path(sys.argv[1]).glob("*.parquet"))])
out = Path(sys.argv[2]); out.mkdir()
frame.write_parquet(out / "train.parquet")
with open(out / "train.jsonl", "w") as f:
    for row in frame.select("messages", "tools").to_dicts():
        f.write(json.dumps(row) + "\\n")
print(json.dumps({"records": frame.height, "seconds": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_input(source: str, n: int, out: Path, per_file: int = 500) -> dict:
    real = pl.concat([pl.read_parquet(p) for p in sorted(glob.glob(source))])
    if real.height == 0:
        sys.exit(f"no sft_dataset rows under {source}: run `make run` first")
    reps = -(-n // real.height)
    frame = pl.concat([real] * reps).head(n)
    frame = frame.with_columns(
        (pl.col("trajectory_id") + "-" + pl.int_range(pl.len()).cast(pl.String)).alias(
            "trajectory_id"
        )
    )
    for i, part in enumerate(frame.iter_slices(per_file)):
        part.write_parquet(out / f"part-{i:04d}.parquet")
    return {"real_records": real.height, "records": frame.height,
            "mean_approx_tokens": round(frame["approx_tokens"].mean(), 1)}  # fmt: skip


def run(script: str, src: Path, dst: Path) -> dict:
    env = {**os.environ, "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2")}
    done = subprocess.run([sys.executable, "-c", script, str(src), str(dst)], env=env,
                          check=True, capture_output=True, text=True)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["records_per_s"] = round(result["records"] / result["seconds"], 1)
    result["seconds"] = round(result["seconds"], 2)
    result["peak_rss_mib"] = round(result["peak_rss_mib"], 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="data/sft_dataset/*/*.parquet")
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        t = time.perf_counter()
        prepared = make_input(args.source, args.n, src)
        print(f"input: {prepared} in {time.perf_counter() - t:.1f}s", flush=True)
        for name, script in (("naive (baseline)", NAIVE), ("export_dataset", EXPORT)):
            result = run(script, src, Path(tmp) / name.split()[0])
            print(f"{name}: {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
