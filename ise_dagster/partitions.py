"""Partition definitions: intents by domain; dialogues and traces by date|domain."""

from dagster import StaticPartitionsDefinition

from ise_dagster.taxonomy import load_taxonomy

DOMAINS = load_taxonomy().domain_ids

domain_partitions = StaticPartitionsDefinition(DOMAINS)
