"""Every recipe (or the named ones) over many fixture seeds, in real sandboxes, in parallel:
the fixture, the playbook, then the task's verifier. A task below 100% has a playbook that
does not cope with some of its own fixtures, or a verifier that asks for what the
observations never showed: data a trainer must not get.

    .venv/bin/python bench/bench_recipe_stability.py [--seeds 20] [--concurrency 8] [TASK ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from collections import defaultdict

from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages.intents import stable_seed
from ise_dagster.stages.progress import map_with_progress
from ise_dagster.tasklib import recipes
from ise_dagster.tasklib.runner import drive, seed_task, verify


def attempt(sandbox: SandboxResource, recipe, seed: int) -> tuple[str, int, bool, str]:
    with sandbox.workspace() as ws:
        ctx = seed_task(ws, recipe, seed)
        for _ in drive(recipe.playbook(ctx), ws, ctx.task_dir):
            pass
        passed, reason = verify(ws, recipe)
    return recipe.task_id, seed, passed, reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="task ids (default: every task)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    library = recipes()
    chosen = [library[t] for t in args.tasks] if args.tasks else list(library.values())
    # Seeds as Stage 2 draws them (hashes), not 0..n: fixtures see the seeds users get.
    jobs = [(r, stable_seed("stability", r.task_id, k)) for r in chosen for k in range(args.seeds)]
    sandbox = SandboxResource(label="ise.sandbox.bench-stability")
    t0 = time.perf_counter()
    try:
        results = map_with_progress(lambda job, _stop: attempt(sandbox, *job), jobs,
                                    args.concurrency, "recipe runs", print)  # fmt: skip
    finally:
        sandbox.close()
    seconds = time.perf_counter() - t0
    by_task: dict[str, list[tuple[int, bool, str]]] = defaultdict(list)
    for task, seed, passed, reason in results:
        by_task[task].append((seed, passed, reason))
    flaky = {t: runs for t, runs in by_task.items() if not all(p for _, p, _ in runs)}
    print(
        f"\n# {dt.date.today()} on {platform.node()}: {len(chosen)} tasks x {args.seeds} "
        f"seeds = {len(results)} runs at concurrency {args.concurrency} in {seconds:.0f} s"
    )
    print(f"tasks below 100%: {len(flaky)}")
    for task, runs in sorted(flaky.items()):
        fails = [(s, r) for s, p, r in runs if not p]
        print(f"  {task}: {len(runs) - len(fails)}/{len(runs)}; e.g. seed {fails[0][0]}: "
              f"{fails[0][1][:200]}")  # fmt: skip


if __name__ == "__main__":
    main()
