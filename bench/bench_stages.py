"""Stages 2 and 3 on one partition of 50 dialogues at concurrency 1, 2 and 4.

Prints trajectories/s per stage and through both, and where the CPU went: the simulator
(user + agent logic in our process), the sandbox client (our process, inside
`Workspace.call`), the Docker daemon (dockerd + containerd and the fuse-overlayfs mounts
they reap), the workloads inside the containers (the docker cpuacct cgroup) and Parquet.
Target: at least 4 trajectories/s through both stages at the best concurrency (2 cores).

    .venv/bin/python bench/bench_stages.py [--dialogues 50] [--concurrency 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from ise_dagster import schemas
from ise_dagster.config import ComplexityMix
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.io.parquet import _write_local_atomic
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.sandbox import SandboxResource, Workspace
from ise_dagster.stages.dialogues import DialogueSettings, simulate_partition
from ise_dagster.stages.intents import generate_intents
from ise_dagster.stages.traces import replay
from ise_dagster.taxonomy import load_taxonomy

TICK = os.sysconf("SC_CLK_TCK")
DOCKER_CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")


def _proc_cpu(pid: int | str, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = (
        int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    )
    return ticks / TICK


def _daemon_cpu() -> float:
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm in ("dockerd", "containerd") or comm.startswith("containerd-shim"):
                total += _proc_cpu(pid, children=True)
        except OSError:
            continue
    return total


def _machine_cpu() -> float:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, parts[:7])
    return (user + nice + system + irq + softirq) / TICK


def _containers_cpu() -> float:
    return int(DOCKER_CPUACCT.read_text()) / 1e9 if DOCKER_CPUACCT.exists() else 0.0


class _ClientCpu:
    """Thread CPU time spent inside Workspace.call: the sandbox client's share of our CPU."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        real = Workspace.call

        def call(ws, *a, **kw):
            t0 = time.thread_time()
            try:
                return real(ws, *a, **kw)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - t0

        Workspace.call = call  # type: ignore[method-assign]


def _snapshot() -> dict[str, float]:
    return {"self": _proc_cpu("self"), "daemon": _daemon_cpu(), "containers": _containers_cpu(),
            "machine": _machine_cpu()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dialogues", type=int, default=50)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--domain", default="File-IO")
    args = ap.parse_args()

    tax = load_taxonomy()
    batch = generate_intents(
        tax, args.domain, args.dialogues, 0, ComplexityMix().as_dict(), OfflineIntentWriter(tax),
        get_embedder(), 0.95,
    )  # fmt: skip
    intents = batch.frame
    client_cpu = _ClientCpu()
    sandbox = SandboxResource(label="ise.sandbox.bench")
    sandbox.manager()  # image + sweep outside the timings
    out = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {intents.height} dialogues "
          f"of {args.domain}")  # fmt: skip
    print(
        "| concurrency | stage 2 traj/s | stage 3 traj/s | both traj/s | tool calls/traj | "
        "CPU s: simulator | sandbox client | docker daemon | containers | parquet | other |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in args.concurrency:
        before, client0 = _snapshot(), client_cpu.seconds
        t0 = time.perf_counter()
        frame, counts = simulate_partition(intents, "2026-11-24", tax, sandbox, DialogueSettings(),
                                           concurrency=c, progress=lambda m: None)  # fmt: skip
        t1 = time.perf_counter()
        todo = frame.filter(status="completed").to_dicts()
        with ThreadPoolExecutor(max_workers=c) as pool:
            rows = list(pool.map(lambda d: replay(d, sandbox), todo))
        t2 = time.perf_counter()
        p0 = time.thread_time()
        _write_local_atomic(frame, out / f"dialogues-{c}.parquet", 3)
        _write_local_atomic(pl.DataFrame(rows, schema=schemas.EXECUTED_TRACES),
                            out / f"traces-{c}.parquet", 3)  # fmt: skip
        parquet = time.thread_time() - p0
        t3 = time.perf_counter()
        after = _snapshot()
        d = {k: after[k] - before[k] for k in before}
        client = client_cpu.seconds - client0
        simulator = d["self"] - client - parquet
        other = d["machine"] - d["self"] - d["daemon"] - d["containers"]
        n = frame.height
        labels = pl.Series([r["label"] for r in rows]).value_counts().rows()
        rates = f"{n / (t1 - t0):.2f} | {len(rows) / (t2 - t1):.2f} | {n / (t3 - t0):.2f}"
        cpu = f"{simulator:.1f} | {client:.1f} | {d['daemon']:.1f} | {d['containers']:.1f}"
        print(f"| {c} | {rates} | {frame['tool_calls'].mean():.1f} | {cpu} | {parquet:.2f} | "
              f"{other:.1f} |")  # fmt: skip
        assert counts.get("completed", 0) == n, counts
        print(f"    labels: {dict(labels)}; wall s: stage2 {t1 - t0:.1f}, stage3 {t2 - t1:.1f}")
    api = sandbox.manager().client.api
    sandbox.close()
    left = api.containers(all=True, filters={"label": "ise.sandbox.bench"})
    print(f"containers leaked: {len(left)}")


if __name__ == "__main__":
    main()
