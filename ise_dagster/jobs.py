"""Jobs: the Stage 1 intents job (per domain) and the pool report."""

from dagster import AssetSelection, define_asset_job

from ise_dagster.partitions import domain_partitions

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
