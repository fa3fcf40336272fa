"""The `ise` command line."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click

from ise_dagster.sandbox.cli import sandbox_group


@click.group()
def main() -> None:
    """ise-dagster: ISE (Intent -> Simulate -> Execute) trajectory synthesis."""


@main.command()
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable).")
@click.option("--intents-per-domain", type=int, default=None, help="Override the default 4,396.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where Parquet lands (default: $ISE_DATA_DIR or ./data).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Dagster's event log as it runs.")
def run(
    domains: tuple[str, ...], intents_per_domain: int | None, data_dir: str | None, verbose: bool
) -> None:
    """Run the main job on embedded defaults: Stage 1 intents for every domain, then the pool.

    Runs are recorded in $DAGSTER_HOME (default ./.dagster_home), so `make ui` shows them.
    """
    if data_dir:
        os.environ["ISE_DATA_DIR"] = data_dir
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").absolute())))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()

    from dagster import DagsterInstance

    from ise_dagster.definitions import defs
    from ise_dagster.io.parquet import data_dir as current_data_dir
    from ise_dagster.partitions import DOMAINS

    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        raise click.BadParameter(f"unknown domain(s) {unknown}; known: {DOMAINS}")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    level = "DEBUG" if verbose else "WARNING"
    run_config: dict = {"loggers": {"console": {"config": {"log_level": level}}}}
    if intents_per_domain is not None:
        run_config["ops"] = {"intents": {"config": {"intents_per_domain": intents_per_domain}}}

    instance = DagsterInstance.get()
    job = defs.resolve_job_def("intents_job")
    started = time.perf_counter()
    for i, domain in enumerate(domains or DOMAINS, 1):
        t0 = time.perf_counter()
        result = job.execute_in_process(
            partition_key=domain, instance=instance, run_config=run_config, raise_on_error=False
        )
        _report(f"[{i}/{len(domains or DOMAINS)}] intents {domain}", result, t0)
    t0 = time.perf_counter()
    result = defs.resolve_job_def("intent_pool_job").execute_in_process(
        instance=instance, run_config={"loggers": run_config["loggers"]}, raise_on_error=False
    )
    _report("intent_pool", result, t0)

    root = Path(current_data_dir()).absolute()
    click.echo(f"\nParquet files under {root}:")
    for path in sorted(root.glob("intents/*.parquet")) + sorted(root.glob("intent_pool*")):
        click.echo(f"  {path}")
    _summary(root)
    click.echo(f"done in {time.perf_counter() - started:.1f}s; runs recorded in {home}")


def _report(label: str, result, t0: float) -> None:
    checks = result.get_asset_check_evaluations()
    failed = [
        f"{c.check_name}: {c.description}" if c.description else c.check_name
        for c in checks
        if not c.passed
    ]
    status = "ok" if result.success else "FAILED"
    click.echo(
        f"{label}: {status} in {time.perf_counter() - t0:.1f}s, "
        f"checks {len(checks) - len(failed)}/{len(checks)} passed"
        + "".join(f"\n  failed check {f}" for f in failed)
    )
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_failure_data:
                click.echo(f"  {event.step_failure_data.error.message.strip()}", err=True)
        raise SystemExit(1)


def _summary(root: Path) -> None:
    import polars as pl

    pool = root / "intent_pool.parquet"
    if not pool.exists():
        return
    stats = pl.read_parquet(pool)
    headline = dict(stats.filter(pl.col("key") == "").select("metric", "value").iter_rows())
    click.echo(
        f"pool: {headline['unique_intents']:.0f} unique intents (paper: 43,956), "
        f"Vendi {headline['vendi_score']:.2f}, "
        f"cross-domain near-duplicate rate {headline['cross_domain_near_dup_rate']:.4f}"
    )


main.add_command(sandbox_group)
