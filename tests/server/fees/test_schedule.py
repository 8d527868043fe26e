"""Settlement periods and the beat schedule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from celery.schedules import crontab

from gridfleet.server.fees import conf
from gridfleet.server.fees.tasks import beat_schedule, billing_guard, billing_settle


def test_period_labels_and_bounds() -> None:
    moment = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # a Monday
    assert conf.period_containing(moment, "hourly").label == "2026-11-23T14"
    daily = conf.period_containing(moment, "daily")
    assert (daily.label, daily.start, daily.end) == ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC),
                                                     datetime(2026, 11, 24, tzinfo=UTC))
    assert conf.period_containing(moment, "weekly").label == "2026-W48"
    monthly = conf.period_containing(datetime(2026, 12, 31, 23, tzinfo=UTC), "monthly")
    assert (monthly.label, monthly.end) == ("2026-12", datetime(2027, 1, 1, tzinfo=UTC))
    assert conf.previous_period(moment, "daily").label == "2026-11-22"
    assert conf.parse_period("2026-11-22", "daily").label == "2026-11-22"
    with pytest.raises(ValueError, match="ISO date"):
        conf.parse_period("22/11/2026", "daily")


def test_beat_schedule_follows_the_setting(settings: Any) -> None:
    from gridfleet.server.celery import app

    assert app.conf.beat_schedule["gridfleet-billing-settlement"]["task"] == "gridfleet.billing_settle"
    settings.GRIDFLEET_BILLING_PERIOD = "hourly"
    hourly = beat_schedule()["gridfleet-billing-settlement"]["schedule"]
    assert isinstance(hourly, crontab) and hourly.minute == {5} and len(hourly.hour) == 24
    settings.GRIDFLEET_BILLING_PERIOD = "daily"
    assert beat_schedule()["gridfleet-billing-settlement"]["schedule"].hour == {0}
    settings.GRIDFLEET_BILLING_PERIOD = "fortnightly"
    with pytest.raises(ValueError, match="GRIDFLEET_BILLING_PERIOD"):
        beat_schedule()


def test_tasks_run(db: None) -> None:
    summary = billing_settle.apply(kwargs={"period": "2026-01-06"}).get()
    assert summary == {"period": "2026-01-06", "settled": 0, "fees": "0", "failed": 0}
    assert billing_guard.apply().get()["checked"] == 0
