"""Partition definitions: intents by domain; dialogues and traces by date|domain."""

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from ise_dagster.taxonomy import load_taxonomy

DOMAINS = load_taxonomy().domain_ids
START_DATE = "2026-11-01"

domain_partitions = StaticPartitionsDefinition(DOMAINS)

# end_offset=1 makes today's date a partition, so the nightly run and `ise run` can use it.
daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)

date_domain_partitions = MultiPartitionsDefinition(
    {"date": daily_partitions, "domain": domain_partitions}
)
