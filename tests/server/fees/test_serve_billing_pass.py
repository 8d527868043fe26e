"""The embedded server's billing pass (``gridfleet serve`` has no Celery beat): ``_billing_pass`` settles the last
completed period of a running bot exactly once however often it runs, and ``_periodic`` keeps calling its job
after the job raises."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from gridfleet.cli import serve_cmd
from gridfleet.server.billing.models import Transaction
from gridfleet.server.fees import conf
from gridfleet.server.fees.models import GuardState, Settlement, StatementStatus, UserFeeProfile
from gridfleet.server.fees.services import ledger_key
from gridfleet.server.users.models import User
from tests.server.fees.conftest import add_snapshot, fund, make_priced_bot, wallet_balance

D = Decimal

# the job of the _periodic tests: raises on its first call, then counts and signals
_calls: list[int] = []
_called_again = threading.Event()


def flaky_job() -> None:
    _calls.append(1)
    if len(_calls) == 1:
        raise RuntimeError("the first billing pass failed")
    _called_again.set()


@pytest.fixture
def job_state() -> Iterator[None]:
    _calls.clear()
    _called_again.clear()
    yield
    _calls.clear()
    _called_again.clear()


def _bot_with_profit_yesterday(owner: User) -> tuple[int, str]:
    """A running bot (10 ETH bought at 100) marked at 120 in the last completed period: net +200."""
    UserFeeProfile.objects.create(user=owner, rate=D("0.1"))
    fund(owner, "100")
    bot = make_priced_bot(owner)
    period = conf.previous_period(timezone.now())
    add_snapshot(bot, period.start + timedelta(hours=1), "120")
    return bot.pk, period.label


@pytest.mark.django_db
def test_billing_pass_settles_the_last_completed_period_once(make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    bot_id, period = _bot_with_profit_yesterday(alice)

    serve_cmd._billing_pass()
    serve_cmd._billing_pass()

    s = Settlement.objects.get(bot_id=bot_id, period=period)
    assert (s.status, s.fee_units, s.reason) == (StatementStatus.PAID, 20 * 10**8, "scheduled")
    assert Settlement.objects.filter(bot_id=bot_id, fee_units__gt=0).count() == 1
    assert Transaction.objects.filter(key=ledger_key(bot_id, period)).count() == 1
    assert Transaction.objects.filter(kind="fee").count() == 1
    assert wallet_balance(alice) == D(80)
    # the guard pass ran too: the user is in good standing (balance 80 ≥ minimum 0, nothing due)
    assert GuardState.objects.get(user=alice).status == "ok"


def test_periodic_keeps_running_after_the_job_raises(job_state: None) -> None:
    stop = threading.Event()
    thread = serve_cmd._periodic("billing", 0.01, f"{__name__}:flaky_job", stop)
    try:
        assert _called_again.wait(10), "the job was not called again after it raised"
        assert thread.is_alive()
        assert len(_calls) >= 2
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()  # and it stops when told


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the periodic thread needs its own connection to a "
                    "shared test database (PostgreSQL)")
def test_periodic_billing_pass_settles_once_over_many_passes(make_user: Callable[..., User],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    alice = make_user("alice")
    bot_id, period = _bot_with_profit_yesterday(alice)
    real_pass, passes, five = serve_cmd._billing_pass, [], threading.Event()

    def counted_pass() -> None:
        real_pass()
        passes.append(1)
        if len(passes) >= 5:
            five.set()

    monkeypatch.setattr(serve_cmd, "_billing_pass", counted_pass)  # the job is looked up by name, as serve does
    stop = threading.Event()
    thread = serve_cmd._periodic("billing", 0.02, "gridfleet.cli.serve_cmd:_billing_pass", stop)
    try:
        assert five.wait(30), f"only {len(passes)} billing pass(es) ran"
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert Settlement.objects.filter(bot_id=bot_id, period=period).count() == 1
    assert Transaction.objects.filter(kind="fee").count() == 1
    assert wallet_balance(alice) == D(80)
