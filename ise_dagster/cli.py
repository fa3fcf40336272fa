"""The `ise` command line."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

import click

from ise_dagster.llm.cli import llm_group
from ise_dagster.sandbox.cli import sandbox_group

# Fewer intents than MIN_PARTITION_VENDI cannot reach it (a Vendi score is at most the count);
# up to about 4x that, offline partitions land near the target by chance (14.7 at 60).
SMALLEST_JUDGED_PARTITION = 40


@click.group()
def main() -> None:
    """ise-dagster: ISE (Intent -> Simulate -> Execute) trajectory synthesis."""


@main.command()
@click.option("--date", default=None, help="The date partition (default: today, UTC).")
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable).")
@click.option("--intents-per-domain", type=int, default=None, help="Override the default 4,396.")
@click.option("--dialogues-per-domain", type=int, default=None, help="Override the default 10.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where Parquet lands (default: $ISE_DATA_DIR or ./data).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Dagster's event log as it runs.")
def run(
    date: str | None,
    domains: tuple[str, ...],
    intents_per_domain: int | None,
    dialogues_per_domain: int | None,
    data_dir: str | None,
    verbose: bool,
) -> None:
    """Run the main job on embedded defaults: intents for every domain and the pool report,
    then dialogues and executed traces for one date across the domains.

    Runs are recorded in $DAGSTER_HOME (default ./.dagster_home), so `make ui` shows them.
    """
    home = _dagster_home(data_dir)

    from dagster import DagsterInstance, MultiPartitionKey

    from ise_dagster.definitions import defs
    from ise_dagster.io.parquet import data_dir as current_data_dir
    from ise_dagster.partitions import DOMAINS, daily_partitions

    date = date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    if not daily_partitions.has_partition_key(date):
        raise click.BadParameter(f"no date partition {date!r}; dates start at "
                                 f"{daily_partitions.start.date()} and end today")  # fmt: skip
    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        raise click.BadParameter(f"unknown domain(s) {unknown}; known: {DOMAINS}")
    domains = domains or tuple(DOMAINS)
    _quiet_http_logs()
    level = "DEBUG" if verbose else "WARNING"
    loggers = {"console": {"config": {"log_level": level}}}
    intent_ops: dict = {}
    if intents_per_domain is not None:
        intent_ops["intents"] = {"config": {"intents_per_domain": intents_per_domain}}
        if intents_per_domain < SMALLEST_JUDGED_PARTITION:
            intent_ops["intents_intents_vendi"] = {"config": {"min_vendi": 0.0}}
            click.echo(f"note: {intents_per_domain} intents per domain are too few to judge "
                       f"diversity (under {SMALLEST_JUDGED_PARTITION}); the per-domain Vendi "
                       "check only reports its score in this run.")  # fmt: skip
    dialogue_ops: dict = {}
    if dialogues_per_domain is not None:
        dialogue_ops["dialogues"] = {"config": {"dialogues_per_partition": dialogues_per_domain}}

    instance = DagsterInstance.get()
    started = time.perf_counter()
    n = len(domains)
    for i, domain in enumerate(domains, 1):
        t0 = time.perf_counter()
        result = defs.resolve_job_def("intents_job").execute_in_process(
            partition_key=domain, instance=instance, raise_on_error=False,
            run_config={"loggers": loggers, "ops": intent_ops},
        )  # fmt: skip
        _report(f"[{i}/{n}] intents {domain}", result, t0)
    t0 = time.perf_counter()
    result = defs.resolve_job_def("intent_pool_job").execute_in_process(
        instance=instance, run_config={"loggers": loggers}, raise_on_error=False
    )
    _report("intent_pool", result, t0)
    for i, domain in enumerate(domains, 1):
        t0 = time.perf_counter()
        result = defs.resolve_job_def("nightly_job").execute_in_process(
            partition_key=MultiPartitionKey({"date": date, "domain": domain}),
            instance=instance, raise_on_error=False,
            run_config={"loggers": loggers, "ops": dialogue_ops},
        )  # fmt: skip
        label = f"[{i}/{n}] dialogues + executed_traces + sft_dataset {date}|{domain}"
        _report(label, result, t0)

    t0 = time.perf_counter()
    result = defs.resolve_job_def("export_job").execute_in_process(
        partition_key=date, instance=instance, raise_on_error=False,
        run_config={"loggers": loggers},
    )  # fmt: skip
    _report(f"sft_export {date}", result, t0)

    root = Path(current_data_dir()).absolute()
    click.echo(f"\nParquet files under {root}:")
    patterns = ["intents/*.parquet", "intent_pool.parquet"] + [
        f"{asset}/{date}/*.parquet" for asset in ("dialogues", "executed_traces", "sft_dataset")
    ]
    for pattern in patterns:
        paths = sorted(root.glob(pattern))
        click.echo(f"  {root / pattern}  ({len(paths)} file{'s' * (len(paths) != 1)})")
    _summary(root, date)
    _export_report(root / "exports" / date)
    click.echo(f"done in {time.perf_counter() - started:.1f}s; runs recorded in {home}")


def _dagster_home(data_dir: str | None) -> Path:
    """Runs are recorded where `make ui` looks; data goes to `data_dir` if given."""
    if data_dir:
        os.environ["ISE_DATA_DIR"] = data_dir
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").absolute())))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    return home


def _quiet_http_logs() -> None:
    for noisy in ("alembic", "httpx", "httpx2"):  # per-request HTTP lines drown the report
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command("bench-agent")
@click.option("--tasks-per-domain", type=int, default=3, show_default=True,
              help="Tasks sampled per domain; 0 for all 131.")  # fmt: skip
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which tasks are sampled.")
@click.option("--concurrency", type=int, default=2, show_default=True,
              help="Tasks attempted in parallel (1 for a one-slot model server).")  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the rows land (default: $ISE_DATA_DIR or ./data).")  # fmt: skip
@click.option(
    "--offline-user",
    is_flag=True,
    help="Pair the agent with the offline user: the score is the agent's alone.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Dagster's event log as it runs.")
def bench_agent(
    tasks_per_domain: int,
    domains: tuple[str, ...],
    seed: int,
    concurrency: int,
    data_dir: str | None,
    offline_user: bool,
    verbose: bool,
) -> None:
    """Benchmark the configured agent on the task library (ISE_LLM_BACKEND, ISE_LLM_MODEL,
    ...; offline by default, the reference that passes every task): each sampled task as a
    one-task intent in a fresh workspace, judged by the task's verifier. Prints pass@1 per
    domain, tool-call validity, steps, tokens and cost."""
    home = _dagster_home(data_dir)

    import polars as pl
    from dagster import DagsterInstance

    from ise_dagster.definitions import defs
    from ise_dagster.io.parquet import data_dir as current_data_dir
    from ise_dagster.partitions import DOMAINS
    from ise_dagster.stages.agent_bench import summary_markdown

    if unknown := sorted(set(domains) - set(DOMAINS)):
        raise click.BadParameter(f"unknown domain(s) {unknown}; known: {DOMAINS}")
    _quiet_http_logs()
    level = "DEBUG" if verbose else "INFO"
    config = {"tasks_per_domain": tasks_per_domain or None, "domains": list(domains),
              "seed": seed, "concurrency": concurrency, "offline_user": offline_user}  # fmt: skip
    t0 = time.perf_counter()
    result = defs.resolve_job_def("agent_bench_job").execute_in_process(
        instance=DagsterInstance.get(), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": level}}},
                    "ops": {"agent_benchmark": {"config": config}}},
    )  # fmt: skip
    _report("agent_benchmark", result, t0)
    path = Path(current_data_dir()).absolute() / "agent_benchmark.parquet"
    click.echo(summary_markdown(pl.read_parquet(path)))
    click.echo(f"rows: {path}; run recorded in {home}")


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
            if event.is_step_failure and (error := event.step_failure_data.error):
                while error.cause is not None:  # Dagster's wrappers first, the reason last
                    error = error.cause
                click.echo(f"  {error.message.strip()}", err=True)
        raise SystemExit(1)


def _summary(root: Path, date: str) -> None:
    import polars as pl

    from ise_dagster.stages.dialogues import paper_comparison

    pool = root / "intent_pool.parquet"
    if pool.exists():
        stats = pl.read_parquet(pool)
        headline = dict(stats.filter(pl.col("key") == "").select("metric", "value").iter_rows())
        click.echo(
            f"intents: {headline['unique_intents']:.0f} unique (paper: 43,956), "
            f"Vendi {headline['vendi_score']:.2f}, "
            f"cross-domain near-duplicate rate {headline['cross_domain_near_dup_rate']:.4f}"
        )
    files = sorted((root / "dialogues" / date).glob("*.parquet"))
    if not files:
        return
    done = pl.concat([pl.read_parquet(f) for f in files]).filter(status="completed")
    if done.height == 0:
        click.echo("dialogues: none completed")
        return
    rows = paper_comparison(done)
    click.echo(f"dialogues on {date}: {done.height} completed")
    click.echo(f"  {'statistic':<28}{'ours':>8}{'paper':>8}{'diff':>8}")
    for name, ours, paper in rows:
        click.echo(f"  {name:<28}{ours:>8.2f}{paper:>8.2f}{(ours - paper) / paper:>+8.1%}")
    traces = sorted((root / "executed_traces" / date).glob("*.parquet"))
    if traces:
        labels = pl.concat([pl.read_parquet(f) for f in traces])["label"].value_counts()
        click.echo("executed traces: " + ", ".join(f"{k} {v}" for k, v in labels.iter_rows()))


def _export_report(out: Path) -> None:
    import json

    from ise_dagster.sft.export import MANIFEST

    if (out / MANIFEST).exists():
        manifest = json.loads((out / MANIFEST).read_text())
        click.echo(f"training dataset: {manifest['records']} records in {out}")
        for name in manifest["files"]:
            click.echo(f"  {out / name}")


@main.command("export")
@click.option("--date", "dates", multiple=True, required=True, help="Date(s) to export.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory.")
@click.option(
    "--format", "fmt", type=click.Choice(["openai", "hf", "both"]), default="both",
    help="OpenAI fine-tuning JSONL, Hugging Face Parquet, or both (default).",
)  # fmt: skip
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable).")
@click.option("--split-parallel-calls", is_flag=True,
              help="One tool call per assistant turn (for Llama 3.1-style templates).")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace a directory that holds files.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where sft_dataset lives (default: $ISE_DATA_DIR or ./data).")  # fmt: skip
def export(
    dates: tuple[str, ...],
    out: str,
    fmt: str,
    domains: tuple[str, ...],
    split_parallel_calls: bool,
    overwrite: bool,
    data_dir: str | None,
) -> None:
    """Export materialized sft_dataset partitions as training files: OpenAI fine-tuning JSONL,
    Hugging Face Parquet and a dataset card (README.md) in OUT."""
    import polars as pl

    from ise_dagster.io.parquet import data_dir as default_data_dir
    from ise_dagster.sft.export import ExportError, export_dataset

    root = Path(data_dir or default_data_dir()).absolute()
    paths = [
        p
        for date in dates
        for p in sorted((root / "sft_dataset" / date).glob("*.parquet"))
        if not domains or p.stem in domains
    ]
    if not paths:
        raise click.ClickException(
            f"no sft_dataset partitions for {', '.join(dates)} under {root / 'sft_dataset'}; "
            "materialize them first (`ise run --date ...`)"
        )
    try:
        summary = export_dataset(
            (pl.read_parquet(p) for p in paths),
            Path(out),
            formats=("openai", "hf") if fmt == "both" else (fmt,),
            overwrite=overwrite,
            split_parallel=split_parallel_calls,
            title=f"ISE trajectories {', '.join(dates)}",
        )
    except ExportError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"exported {summary.records} records from {len(paths)} partitions "
               f"in {summary.seconds:.1f}s to {summary.out}")  # fmt: skip
    for f in summary.files:
        click.echo(f"  {f}")


main.add_command(sandbox_group)
main.add_command(llm_group)
