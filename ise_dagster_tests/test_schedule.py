import datetime as dt

from dagster import DagsterInstance, build_schedule_context

from ise_dagster.jobs import nightly_schedule
from ise_dagster.partitions import DOMAINS


def test_nightly_schedule_requests_every_domain_for_the_day_once():
    when = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=when)
        requests = list(nightly_schedule(context))
    assert [str(r.partition_key) for r in requests] == [f"2026-11-24|{d}" for d in DOMAINS]
    assert len({r.run_key for r in requests}) == len(DOMAINS)
    assert nightly_schedule.cron_schedule == "0 2 * * *"
