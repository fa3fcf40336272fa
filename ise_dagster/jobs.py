"""Jobs and the nightly schedule."""

from dagster import (
    AssetSelection,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from ise_dagster.partitions import (
    DOMAINS,
    daily_partitions,
    date_domain_partitions,
    domain_partitions,
)

intents_job = define_asset_job(
    "intents_job",
    selection=AssetSelection.assets("intents"),
    partitions_def=domain_partitions,
    description="Stage 1 for one domain: sample, write, dedup and score intents, then check them.",
)

intent_pool_job = define_asset_job(
    "intent_pool_job",
    selection=AssetSelection.assets("intent_pool"),
    description="Pool-wide Stage 1 figures over every materialized intents partition.",
)

# A Dagster job covers one partitions definition, so intents (by domain) are built by
# intents_job, once, and the nightly job draws each date's share from that pool.
nightly_job = define_asset_job(
    "nightly_job",
    selection=AssetSelection.assets("dialogues", "executed_traces", "sft_dataset"),
    partitions_def=date_domain_partitions,
    description="Dialogues -> executed traces -> SFT records for one date|domain, from the "
    "intents pool.",
)

export_job = define_asset_job(
    "export_job",
    selection=AssetSelection.assets("sft_export"),
    partitions_def=daily_partitions,
    description="One date's SFT records, every domain, as OpenAI JSONL, HF Parquet and a card.",
)

agent_bench_job = define_asset_job(
    "agent_bench_job",
    selection=AssetSelection.assets("agent_benchmark"),
    description="The configured agent's pass@1 on a fixed sample of the task library.",
)


@schedule(job=nightly_job, cron_schedule="0 2 * * *", execution_timezone="UTC")
def nightly_schedule(context: ScheduleEvaluationContext):
    """At 02:00, one run per domain for the day's date; the run_key makes a tick idempotent."""
    date = context.scheduled_execution_time.strftime("%Y-%m-%d")
    for domain in DOMAINS:
        key = MultiPartitionKey({"date": date, "domain": domain})
        yield RunRequest(run_key=f"nightly-{date}-{domain}", partition_key=key)
