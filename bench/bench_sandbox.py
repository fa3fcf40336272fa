"""Sandbox benchmark: tool-server round trip vs exec_run vs `docker exec`, acquire times,
and trajectories/s for a 30-call scripted trajectory at concurrency 1, 2, 4.

    .venv/bin/python bench/bench_sandbox.py [--rounds 200] [--trajectories 12]

Prints a markdown table (rows for BENCHMARKS.md) and exits nonzero if a container leaked.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ise_dagster.sandbox import SandboxResource
from ise_dagster.sandbox.workspace import AGENT_USER

LABEL = "ise.sandbox.bench"


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def stats(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def trajectory(res: SandboxResource) -> None:
    """30 tool calls, roughly the mix an agent produces."""
    with res.workspace() as ws:
        for i in range(5):
            calls = [
                ("write", {"path": f"src/m{i}.py", "content": f"x = {i}\nprint(x)\n"}),
                ("read", {"path": f"src/m{i}.py"}),
                ("edit", {"path": f"src/m{i}.py", "old": f"x = {i}", "new": f"x = {i + 1}"}),
                ("exec", {"cmd": f"python3 src/m{i}.py"}),
                ("exec", {"cmd": "ls -la src | wc -l"}),
                ("exec", {"cmd": "grep -rn x src | head -5"}),
            ]
            for tool, args in calls:
                r = ws.call(tool, args)
                assert r.ok, r


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200, help="round trips per method")
    ap.add_argument("--cli-rounds", type=int, default=40)
    ap.add_argument("--acquires", type=int, default=20)
    ap.add_argument("--trajectories", type=int, default=12, help="per concurrency level")
    opts = ap.parse_args()

    res = SandboxResource(label=LABEL)
    mgr = res.manager()  # build/sweep outside the timings
    rows: list[tuple[str, str, str]] = []

    # ---------------------------------------------------------------- round trips
    with res.workspace() as ws:
        for _ in range(10):
            ws.call("exec", {"cmd": "true"})
        container = ws.client.containers.get(ws.container_id)
        ts = stats(timed(lambda: ws.call("exec", {"cmd": "true"}), opts.rounds))
        server_ms = stats(timed(lambda: ws.call("read", {"path": "."}), 50))
        er = stats(timed(lambda: container.exec_run("true", user=AGENT_USER), opts.rounds // 2))
        cli = stats(
            timed(
                lambda: subprocess.run(
                    ["docker", "exec", "-u", AGENT_USER, ws.container_id, "true"], check=True
                ),
                opts.cli_rounds,
            )
        )
    rows += [
        ("`true` via tool server (median / p95)", f"{ts[0]:.1f} / {ts[1]:.1f} ms", ""),
        (
            "`true` via `exec_run` (median / p95)",
            f"{er[0]:.1f} / {er[1]:.1f} ms",
            f"tool server {er[0] / ts[0]:.1f}x faster (target >= 5x)",
        ),  # fmt: skip
        (
            "`true` via `docker exec` CLI (median / p95)",
            f"{cli[0]:.1f} / {cli[1]:.1f} ms",
            f"tool server {cli[0] / ts[0]:.1f}x faster",
        ),  # fmt: skip
        (
            "tool-call protocol floor (`read` error, median)",
            f"{server_ms[0]:.2f} ms",
            "no process spawned: JSON over the attached exec",
        ),  # fmt: skip
    ]

    # ---------------------------------------------------------------- acquire
    def cold() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        ws = mgr.acquire()
        t1 = time.perf_counter()
        ws.call("exec", {"cmd": "true"})
        t2 = time.perf_counter()
        ws.close()
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t0) * 1000, (t3 - t2) * 1000

    samples = [cold() for _ in range(opts.acquires)]
    acq, first, rel = (stats([s[i] for s in samples]) for i in range(3))
    rows += [
        ("cold acquire: create+start+tool server (median / p95)",
         f"{acq[0]:.0f} / {acq[1]:.0f} ms", "target < 250 ms median"),
        ("cold acquire to first `true` result (median / p95)",
         f"{first[0]:.0f} / {first[1]:.0f} ms", "includes the tool server's Python start-up"),
        ("release (force remove, median / p95)", f"{rel[0]:.0f} / {rel[1]:.0f} ms", ""),
    ]  # fmt: skip

    pooled = SandboxResource(label=LABEL, warm_pool_size=2)
    pmgr = pooled.manager()
    warm = []
    for _ in range(opts.acquires):
        deadline = time.monotonic() + 30
        while pmgr.pool_size() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.perf_counter()
        ws = pmgr.acquire()
        ws.call("exec", {"cmd": "true"})
        warm.append((time.perf_counter() - t0) * 1000)
        ws.close()
    pooled.close()
    w = stats(warm)
    note = "pool size 2; a background refill competes for the 2 cores"
    rows.append(("warm-pool acquire to first `true` result (median / p95)",
                 f"{w[0]:.1f} / {w[1]:.1f} ms", note))  # fmt: skip

    # ---------------------------------------------------------------- throughput
    for conc in (1, 2, 4):
        n = opts.trajectories
        t0 = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            list(pool.map(lambda _: trajectory(res), range(n)))
        elapsed = time.perf_counter() - t0
        rows.append((f"30-call trajectories/s, concurrency {conc}", f"{n / elapsed:.2f}/s",
                     f"{n} trajectories, fresh container each, cold (no pool)"))  # fmt: skip
    res.close()

    leaked = mgr.client.api.containers(all=True, filters={"label": LABEL})
    rows.append(("containers leaked after the bench", str(len(leaked)), "target 0"))

    print(f"\nmachine: {platform.node()} {platform.machine()}, python {platform.python_version()}")
    print("| metric | value | note |\n|---|---|---|")
    for metric, value, note in rows:
        print(f"| {metric} | {value} | {note} |")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
