"""`make ui` stops on Ctrl-C: SIGINT to `dagster dev`'s process group ends every process in
it (webserver, daemon, code servers, run workers) within 10 seconds."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from ise_dagster.sandbox import cleanup
from ise_dagster.sandbox.cleanup import DEFAULT_LABEL
from ise_dagster_tests.helpers import require_docker
from ise_dagster_tests.ui.dagster_dev import DAGSTER, LOCATION, REPO, DagsterDev

pytestmark = pytest.mark.slow

CTRL_C_BOUND_S = 10.0


class StillRunning(AssertionError):
    """Processes of the group outlived the Ctrl-C bound (and were killed)."""


def _assert_stops_on_ctrl_c(dev: DagsterDev) -> float:
    try:
        result = dev.interrupt(timeout=CTRL_C_BOUND_S)
    finally:
        dev.kill()  # whatever is left: only this process group, never by user
    if result.left:
        raise StillRunning(
            f"{len(result.left)} process(es) of dagster dev still running {result.seconds} s "
            f"after Ctrl-C (killed now):\n{result.describe()}\n--- log tail ---\n{dev.log_tail()}"
        )
    print(f"every process of dagster dev exited {result.seconds} s after Ctrl-C")  # for -s
    return result.seconds


def test_ctrl_c_stops_every_process(tmp_path: Path):
    dev = DagsterDev(tmp_path).start()
    try:
        dev.wait_ready(timeout=150)
        procs = " ".join(dev.processes().values())
    except BaseException:
        dev.kill()
        raise
    # What Ctrl-C has to stop: the webserver, the daemon and the code server that imported
    # ise_dagster.definitions (the location is loaded, so our import-time code has run).
    for part in ("dagster_webserver", "dagster._daemon", "api grpc"):
        assert part in procs, f"no {part!r} process in the group: {procs}"
    _assert_stops_on_ctrl_c(dev)


_LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
_STEPS = """query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status stepStats { stepKey status } } } }"""


@pytest.mark.docker
def test_ctrl_c_during_a_nightly_run(tmp_path: Path):
    """The reported hang: Ctrl-C while a date|domain run is inside its `dialogues` step."""
    client = require_docker()
    dev = DagsterDev(tmp_path).start()
    try:
        _ctrl_c_during_a_nightly_run(dev, client)
    finally:
        # A run worker killed by the fallback SIGKILL cannot remove its workspaces: sweep
        # those whose owner process is gone (as the next sandbox start-up would).
        cleanup.sweep(client)


def _ctrl_c_during_a_nightly_run(dev: DagsterDev, client) -> None:
    try:
        dev.wait_ready(timeout=150)  # first: it creates the instance's storage
        # A small intents pool for the domain (Stage 1, no Docker) in the same instance.
        small = {"ops": {"intents": {"config": {"intents_per_domain": 60}}}}
        cli = subprocess.run(
            [str(DAGSTER), "asset", "materialize", "-m", LOCATION, "--select", "intents",
             "--partition", "File-IO", "--config-json", json.dumps(small)],
            cwd=REPO, env=dev.env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]

        date = time.strftime("%Y-%m-%d", time.gmtime())
        tags = {"dagster/partition": f"{date}|File-IO", "dagster/partition/date": date,
                "dagster/partition/domain": "File-IO"}  # fmt: skip
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": "nightly_job",
            },
            # 20 dialogues keep the step busy for well over the two seconds waited below.
            "runConfigData": {"ops": {"dialogues": {"config": {"dialogues_per_partition": 20}}}},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        launched = dev.graphql(_LAUNCH, {"p": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        deadline = time.monotonic() + 180
        while True:
            run = dev.graphql(_STEPS, {"id": run_id})["runOrError"]
            steps = {s["stepKey"]: s["status"] for s in run.get("stepStats") or []}
            if steps.get("dialogues") == "IN_PROGRESS":
                break
            assert run.get("status") not in ("FAILURE", "SUCCESS", "CANCELED"), run
            assert time.monotonic() < deadline, f"dialogues never started: {run}"
            time.sleep(0.5)
        time.sleep(2)  # inside the step: workspaces are live, dialogues are running
        group = set(dev.processes())
    except BaseException:
        dev.kill()
        raise
    _assert_stops_on_ctrl_c(dev)
    # The interrupted run removed its own workspaces on the way out.
    left = [c["Names"] for c in client.api.containers(all=True, filters={"label": DEFAULT_LABEL})
            if _owner_pid(c["Labels"].get(f"{DEFAULT_LABEL}.owner", "")) in group]  # fmt: skip
    assert not left, f"workspaces left behind by the interrupted run: {left}"


def _owner_pid(owner: str) -> int:
    """The pid in an owner label `host:pid:start`; -1 if none."""
    pid = owner.split(":")[1] if owner.count(":") >= 1 else ""
    return int(pid) if pid.isdigit() else -1
