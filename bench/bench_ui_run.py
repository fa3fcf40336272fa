"""One date|domain partition of `nightly_job` three ways, interleaved in one run:

- `ise run` (the step's own "in X s" figure: in-process, no run worker);
- launched through the webserver's GraphQL API, as the UI's "Materialize" button does, with
  the code location's executor (in-process since issue 15);
- the same launch against a copy of the code location on Dagster's default multiprocess
  executor (a subprocess per step: the baseline before issue 15).

A launch is timed from the submit call to the run's terminal status, so it includes the
run worker's start-up, as a user waiting in the UI sees it. Target: launched within 1.5x of
`ise run`.

    .venv/bin/python bench/bench_ui_run.py [--rounds 2] [--domain File-IO] [--dialogues 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MULTIPROCESS_DEFS = """
from dagster import Definitions, multiprocess_executor
from ise_dagster.definitions import defs

defs = Definitions(
    assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
    schedules=defs.schedules, resources=defs.resources, executor=multiprocess_executor,
)
"""
# Launch immediately (no queue and no daemon), so the figure is the run itself.
INSTANCE_YAML = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webserver:
    """`dagster-webserver` over one code location, with its own DAGSTER_HOME."""

    def __init__(self, name: str, target: list[str], work: Path, env: dict[str, str]) -> None:
        self.home = work / f"home-{name}"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text(INSTANCE_YAML)
        self.port = _free_port()
        self.env = {**env, "DAGSTER_HOME": str(self.home)}
        self.log = open(work / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), *target],
            cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=self.log,
        )  # fmt: skip
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=5)
                break
            except OSError as exc:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(
                        f"webserver {name} did not start; see {self.log.name}"
                    ) from exc
                time.sleep(1)
        from dagster_graphql import DagsterGraphQLClient

        self.client = DagsterGraphQLClient("127.0.0.1", port_number=self.port, timeout=600)

    def launch(self, date: str, domain: str, dialogues: int) -> tuple[float, float, str]:
        """Seconds from submit to the end, the run's own start-to-end, and its status."""
        key = f"{date}|{domain}"
        tags = {"dagster/partition": key, "dagster/partition/date": date,
                "dagster/partition/domain": domain}  # fmt: skip
        config = {"ops": {"dialogues": {"config": {"dialogues_per_partition": dialogues}}}}
        t0 = time.perf_counter()
        run_id = self.client.submit_job_execution("nightly_job", run_config=config, tags=tags)
        while (status := self.client.get_run_status(run_id).value) not in (
            "SUCCESS", "FAILURE", "CANCELED",
        ):  # fmt: skip
            time.sleep(0.25)
        wall = time.perf_counter() - t0
        own = subprocess.run(
            [str(BIN / "python"), "-c", "import sys; from dagster import DagsterInstance; "
             "s = DagsterInstance.get().get_run_stats(sys.argv[1]); "
             "print(s.end_time - s.launch_time)", run_id],
            env=self.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return wall, float(own.strip().splitlines()[-1]), status

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def ise_run(date: str, domain: str, dialogues: int, env: dict[str, str]) -> float:
    out = subprocess.run(
        [str(BIN / "ise"), "run", "--date", date, "--domain", domain, "--intents-per-domain",
         "200", "--dialogues-per-domain", str(dialogues)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    m = re.search(r"dialogues \+ executed_traces \+ sft_dataset \S+: ok in ([\d.]+)s", out.stdout)
    if not m:
        raise RuntimeError(f"ise run failed:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--domain", default="File-IO")
    ap.add_argument("--dialogues", type=int, default=10)
    args = ap.parse_args()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    work = Path(tempfile.mkdtemp(prefix="bench-ui-run-"))
    (work / "multiprocess_defs.py").write_text(MULTIPROCESS_DEFS)
    env = {**os.environ, "ISE_DATA_DIR": str(work / "data"), "DAGSTER_HOME": str(work / "cli")}
    (work / "cli").mkdir()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.dialogues} dialogues in {date}|{args.domain}; work dir {work}")  # fmt: skip
    ise_run(date, args.domain, args.dialogues, env)  # warm-up; materializes the intents
    servers = {
        "launched (in-process)": Webserver("inprocess", ["-m", "ise_dagster.definitions"], work,
                                           env),
        "launched (multiprocess)": Webserver("multiprocess",
                                             ["-f", str(work / "multiprocess_defs.py")], work, env),
    }  # fmt: skip
    figures: dict[str, list[float]] = {"ise run": [], **{k: [] for k in servers}}
    own: dict[str, list[float]] = {k: [] for k in servers}
    try:
        for r in range(1, args.rounds + 1):
            figures["ise run"].append(ise_run(date, args.domain, args.dialogues, env))
            for name, server in servers.items():
                wall, run_s, status = server.launch(date, args.domain, args.dialogues)
                if status != "SUCCESS":
                    raise RuntimeError(f"{name}: run ended {status}")
                figures[name].append(wall)
                own[name].append(run_s)
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in figures.items()))
    finally:
        for server in servers.values():
            server.stop()
    base = statistics.median(figures["ise run"])
    print("\n| way | median s | x ise run | run's own start-to-end s |")
    print("|---|---|---|---|")
    for name, values in figures.items():
        mine = statistics.median(values)
        inner = f"{statistics.median(own[name]):.1f}" if name in own else "-"
        print(f"| {name} | {mine:.1f} | {mine / base:.2f}x | {inner} |")


if __name__ == "__main__":
    main()
