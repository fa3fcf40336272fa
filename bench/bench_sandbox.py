"""Sandbox benchmark: tool-server round trip vs exec_run vs `docker exec`, acquire times,
and trajectories/s for a 30-call scripted trajectory at concurrency 1, 2, 4.

    .venv/bin/python bench/bench_sandbox.py [--rounds 200] [--trajectories 12]
    .venv/bin/python bench/bench_sandbox.py --integrity [--baseline-rev 5b60253] [--peers]

`--integrity` (issue 13) measures, in one run: the tool-call median and a 40 MB write against
the tool server of `--baseline-rev` (run from `git show`, in the same hardened container),
the same 30-command trajectory through this sandbox, docker-py `exec_run` and, with
`--peers`, mini-swe-agent's DockerEnvironment (installed into its own venv under
~/.cache/ise-dagster/bench-peers; 12 interleaved rounds), and a 200-workspace burst.

Prints a markdown table (rows for BENCHMARKS.md) and exits nonzero if a container leaked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ise_dagster.sandbox import SandboxResource
from ise_dagster.sandbox.channel import Channel
from ise_dagster.sandbox.workspace import AGENT_ENV, AGENT_USER

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


# The same 30 shell commands for every contender (mini-swe-agent has no file tools).
COMMANDS = [
    cmd
    for i in range(5)
    for cmd in (
        f"mkdir -p src && printf 'x = {i}\\nprint(x)\\n' > src/m{i}.py",
        f"cat src/m{i}.py",
        f"sed -i 's/x = {i}/x = {i + 1}/' src/m{i}.py",
        f"python3 src/m{i}.py",
        "ls -la src | wc -l",
        "grep -rn x src | head -5",
    )
]


def _ours(res: SandboxResource) -> float:
    t = time.perf_counter()
    with res.workspace() as ws:
        for cmd in COMMANDS:
            assert ws.call("exec", {"cmd": cmd}).ok
    return time.perf_counter() - t


def _exec_run(client, image: str) -> float:
    t = time.perf_counter()
    c = client.containers.run(image, ["sleep", "infinity"], detach=True, network_mode="none",
                              user=AGENT_USER, working_dir="/tmp", labels={LABEL: "1"})  # fmt: skip
    try:
        for cmd in COMMANDS:
            assert c.exec_run(["bash", "-c", cmd], user=AGENT_USER, workdir="/tmp").exit_code == 0
    finally:
        c.remove(force=True)
    return time.perf_counter() - t


PEER_SCRIPT = """
import json, sys, time
from minisweagent.environments.docker import DockerEnvironment
image, commands = sys.argv[1], json.loads(sys.argv[2])
t = time.perf_counter()
env = DockerEnvironment(image=image, cwd="/tmp", run_args=["--rm", "--network", "none",
                        "--label", sys.argv[3] + "=1"])
for cmd in commands:
    assert env.execute({"command": cmd})["returncode"] == 0
env.cleanup()
print(json.dumps(time.perf_counter() - t))
"""


def _peer_python() -> str:
    venv = Path.home() / ".cache" / "ise-dagster" / "bench-peers"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mini-swe-agent==2.4.6"],
                       check=True)  # fmt: skip
    return str(python)


def _mini(python: str, image: str) -> float:
    out = subprocess.run(
        [python, "-c", PEER_SCRIPT, image, json.dumps(COMMANDS), LABEL],
        capture_output=True, text=True, check=True,
        env={**os.environ, "MSWEA_SILENT_STARTUP": "1"},
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


class _BaselineServer:
    """The tool server of an earlier commit, run the way that commit ran it (as uid 1000),
    inside a container of today's hardened configuration."""

    def __init__(self, mgr, source: str) -> None:
        self.api = mgr.client.api
        self.cid = mgr._create_container(f"ise-bench-baseline-{time.time_ns()}")
        argv = ["python3", "-I", "-c", source, "--max-output-bytes", "65536"]
        self.ch = Channel(self.api, self.cid, argv, user=AGENT_USER, env=AGENT_ENV,
                          workdir="/workspace")  # fmt: skip
        assert self.ch.recv(time.monotonic() + 30)["event"] == "ready"
        self.n = 0

    def call(self, tool: str, args: dict) -> dict:
        self.n += 1
        self.ch.send({"id": self.n, "tool": tool, "args": args})
        return self.ch.recv(time.monotonic() + 120)

    def close(self) -> None:
        self.ch.close()
        self.api.remove_container(self.cid, force=True)


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def integrity(opts) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    res = SandboxResource(label=LABEL)
    mgr = res.manager()
    source = subprocess.run(
        ["git", "show", f"{opts.baseline_rev}:ise_dagster/sandbox/toolserver.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    big = ("0123456789abcdef" * 64 + "\n") * (40 * 1024 * 1024 // 1025)

    # ------------------------------------------------ per call and 40 MB, interleaved
    base = _BaselineServer(mgr, source)
    calls = {"baseline": [], "now": [], "baseline_40mb": [], "now_40mb": []}
    with res.workspace() as ws:
        for _ in range(10):
            ws.call("exec", {"cmd": "true"})
            base.call("exec", {"cmd": "true"})
        for _ in range(opts.rounds // 20):
            calls["now"] += timed(lambda: ws.call("exec", {"cmd": "true"}), 10)
            calls["baseline"] += timed(lambda: base.call("exec", {"cmd": "true"}), 10)
        for _ in range(opts.writes):
            calls["now_40mb"] += timed(
                lambda: ws.call("write", {"path": "big.txt", "content": big}), 1
            )
            calls["baseline_40mb"] += timed(
                lambda: base.call("write", {"path": "big.txt", "content": big}), 1
            )
    base.close()
    now, then = stats(calls["now"]), stats(calls["baseline"])
    w_now, w_then = stats(calls["now_40mb"]), stats(calls["baseline_40mb"])
    rows += [
        ("`exec true`, this tool server (median / p95)", f"{now[0]:.1f} / {now[1]:.1f} ms",
         f"{now[0] / then[0]:.2f}x the baseline's median (target <= 1.10x)"),
        (f"`exec true`, tool server of {opts.baseline_rev} (median / p95)",
         f"{then[0]:.1f} / {then[1]:.1f} ms", "same container config, run as uid 1000"),
        ("40 MB `write`, this tool server (median)", f"{w_now[0] / 1000:.2f} s",
         f"target < 1 s; baseline {w_then[0] / 1000:.2f} s ({w_then[0] / w_now[0]:.1f}x slower)"),
    ]  # fmt: skip

    # ------------------------------------------------ the same 30 commands, peers
    contenders = {"this sandbox": lambda: _ours(res),
                  "docker-py exec_run": lambda: _exec_run(mgr.client, mgr.image)}  # fmt: skip
    if opts.peers:
        python = _peer_python()
        contenders["mini-swe-agent 2.4.6"] = lambda: _mini(python, mgr.image)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(opts.peer_rounds):
        for name, run in contenders.items():
            times[name].append(run())
    ours = statistics.median(times["this sandbox"])
    for name, ts in times.items():
        med = statistics.median(ts)
        note = "" if name == "this sandbox" else f"{med / ours:.1f}x this sandbox's time"
        rows.append((f"30-command trajectory, {name} (median of {len(ts)})", f"{med:.2f} s", note))
    if not opts.peers:
        rows.append(("peers", "not run", "pass --peers to add mini-swe-agent"))

    # ------------------------------------------------ burst
    burst = SandboxResource(label=LABEL, max_live_workspaces=opts.burst_live)
    bmgr = burst.manager()
    failures, rss0, peak = [], _rss_kib(), [0]

    def one(i: int) -> None:
        try:
            with burst.workspace() as ws:
                assert ws.call("exec", {"cmd": f"echo {i}"}).stdout == f"{i}\n"
        except Exception as exc:  # counted below
            failures.append(repr(exc))
        peak[0] = max(peak[0], _rss_kib())

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(opts.burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    st = burst.stats()
    burst.close()
    leaked = bmgr.client.api.containers(all=True, filters={"label": LABEL})
    rows += [
        (f"{opts.burst} workspaces requested at once", f"{len(failures)} failures, "
         f"{len(leaked)} leaked, {elapsed:.0f} s",
         f"max_live_workspaces={opts.burst_live}; target 0 failures"),
        ("burst: queue wait (mean / max)",
         f"{st['queue_wait_s'] / max(1, st['acquired']):.1f} / {st['max_queue_wait_s']:.1f} s",
         f"controller RSS +{(peak[0] - rss0) / 1024:.0f} MiB at peak"),
    ]  # fmt: skip
    res.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--integrity", action="store_true", help="the issue-13 measurements only")
    ap.add_argument("--baseline-rev", default="5b60253", help="commit of the baseline server")
    ap.add_argument("--peers", action="store_true", help="add mini-swe-agent (own venv)")
    ap.add_argument("--peer-rounds", type=int, default=12)
    ap.add_argument("--writes", type=int, default=3, help="40 MB writes per server")
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--burst-live", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=200, help="round trips per method")
    ap.add_argument("--cli-rounds", type=int, default=40)
    ap.add_argument("--acquires", type=int, default=20)
    ap.add_argument("--trajectories", type=int, default=12, help="per concurrency level")
    opts = ap.parse_args()
    if opts.integrity:
        rows = integrity(opts)
        client = SandboxResource(label=LABEL).manager().client
        leaked = client.api.containers(all=True, filters={"label": LABEL})
        rows.append(("containers leaked after the bench", str(len(leaked)), "target 0"))
        _print(rows)
        return 1 if leaked else 0

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

    _print(rows)
    return 1 if leaked else 0


def _print(rows: list[tuple[str, str, str]]) -> None:
    print(f"\nmachine: {platform.node()} {platform.machine()}, python {platform.python_version()}")
    print("| metric | value | note |\n|---|---|---|")
    for metric, value, note in rows:
        print(f"| {metric} | {value} | {note} |")


if __name__ == "__main__":
    sys.exit(main())
