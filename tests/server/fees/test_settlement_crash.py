"""A worker killed (SIGKILL) inside a settlement's database transaction leaves nothing half-posted; a re-run
finishes the settlement exactly once (fee, statement line, commission lines) and a second re-run changes nothing.

The child is a real ``python`` process on the test database: it settles a bot with profit through
:func:`settle_bot` and stops right before the last write of the transaction (the fee state's HWM update), after
the statement line, the ledger transaction with its entries, the commission lines and the statement's ``paid``
status are written; the parent checks that none of it is visible, kills it and checks again. PostgreSQL only.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from gridfleet.server.billing import ledger
from gridfleet.server.billing.audit import run_audit
from gridfleet.server.billing.models import Entry, Transaction
from gridfleet.server.fees.models import (
    AgentProfile,
    BotFeeState,
    CommissionLine,
    Settlement,
    StatementStatus,
    UserFeeProfile,
)
from gridfleet.server.fees.services import fee_state, ledger_key, run_settlement, settle_bot
from gridfleet.server.users.models import User
from tests.server.fees.conftest import DAY0, add_snapshot, day, fund, make_priced_bot, wallet_balance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the crash test needs PostgreSQL (a real second "
                       "process on the same database; the in-memory/file SQLite test database is not shared)"),
]
D = Decimal
PERIOD = "2026-01-06"
AS_OF = DAY0 + timedelta(days=2) - timedelta(microseconds=1)  # the end of the period 2026-01-06

CHILD = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    import django
    django.setup()
    from gridfleet.server.billing.models import Transaction
    from gridfleet.server.bots.models import Bot
    from gridfleet.server.fees import services
    from gridfleet.server.fees.models import BotFeeState, CommissionLine, Settlement

    bot_id, period, as_of = int(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
    real_save = BotFeeState.save

    def save(self, *args, **kwargs):
        if "hwm_units" in (kwargs.get("update_fields") or ()):  # the settlement's last write, before COMMIT
            key = services.ledger_key(bot_id, period)
            written = (Settlement.objects.filter(bot_id=bot_id, period=period, status="paid").count(),
                       Transaction.objects.filter(key=key).count(),
                       CommissionLine.objects.filter(settlement__bot_id=bot_id).count())
            print("WRITTEN", *written, flush=True)
            time.sleep(600)
        return real_save(self, *args, **kwargs)

    BotFeeState.save = save
    services.settle_bot(Bot.objects.get(pk=bot_id), period, as_of)
    print("COMMITTED", flush=True)  # never reached
""")


def _child_env(tmp_path: Path) -> dict[str, str]:
    s = connection.settings_dict
    return dict(os.environ, DJANGO_SETTINGS_MODULE="gridfleet.server.settings",
                DATABASE_URL=f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
                GRIDFLEET_DB=str(tmp_path / "unused.sqlite3"))


def _snapshot_of_money(user: User, agent: User) -> tuple[int, int, Decimal, Decimal, Decimal]:
    revenue = D(ledger.balance(ledger.system_account("platform_revenue")))
    return (Transaction.objects.count(), Entry.objects.count(), wallet_balance(user),
            D(ledger.balance(ledger.agent_payable(agent))), revenue)


def _audit_ok() -> None:
    report = run_audit()
    assert report.ok, report.failures


def test_worker_killed_inside_settlement_leaves_nothing_and_rerun_settles_once(
        client_user: User, agent_user: User, tmp_path: Path) -> None:
    UserFeeProfile.objects.create(user=client_user, rate=D("0.1"))
    AgentProfile.objects.create(agent=agent_user, commission_rate=D("0.3"))
    fund(client_user, "100")
    bot = make_priced_bot(client_user)
    add_snapshot(bot, day(1), "120")  # net profit +200 at the end of 2026-01-06: a fee of 20, commission 6
    state_before = fee_state(bot)  # created here, so the child's only BotFeeState.save is the HWM update
    before = _snapshot_of_money(client_user, agent_user)
    key = ledger_key(bot.pk, PERIOD)

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(bot.pk), PERIOD, AS_OF.isoformat()],
                             env=_child_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[3])
    try:
        ready, _, _ = select.select([child.stdout], [], [], 90)
        assert ready, "the child did not reach the end of the settlement"
        line = child.stdout.readline().split()
        # the child wrote the statement line (paid), the fee's ledger transaction and the commission line
        assert line == ["WRITTEN", "1", "1", "1"], (line, child.stderr.read() if child.poll() is not None else "")
        # ... none of which is visible outside its transaction
        assert not Settlement.objects.filter(bot=bot).exists()
        assert not Transaction.objects.filter(key=key).exists()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)

    # nothing half-posted: no statement, no ledger transaction or entry, balances and fee state unchanged
    assert not Settlement.objects.filter(bot=bot).exists()
    assert not Transaction.objects.filter(key=key).exists()
    assert not Entry.objects.filter(transaction__key=key).exists()
    assert not CommissionLine.objects.exists()
    assert _snapshot_of_money(client_user, agent_user) == before
    state = BotFeeState.objects.get(bot=bot)
    assert (state.hwm_units, state.last_as_of) == (state_before.hwm_units, None) == (0, None)
    _audit_ok()

    # the re-run finishes it, exactly once
    result = settle_bot(bot, PERIOD, AS_OF)
    assert result.created and result.settlement is not None
    s = Settlement.objects.get(bot=bot, period=PERIOD)
    assert (s.status, s.fee_units, s.commission_units) == (StatementStatus.PAID, 20 * 10**8, 6 * 10**8)
    assert (s.net_profit_units, s.hwm_before_units, s.hwm_after_units) == (200 * 10**8, 0, 200 * 10**8)
    txn = Transaction.objects.get(key=key)
    assert txn.kind == "fee" and txn.entries.count() == 3
    assert list(CommissionLine.objects.filter(settlement=s).values_list("agent_id", "amount_units")) == [
        (agent_user.pk, 6 * 10**8)]
    assert wallet_balance(client_user) == D(80)
    assert D(ledger.balance(ledger.agent_payable(agent_user))) == D(6)
    assert D(ledger.balance(ledger.system_account("platform_revenue"))) == before[4] + D(14)
    assert BotFeeState.objects.get(bot=bot).hwm_units == 200 * 10**8
    _audit_ok()
    after = _snapshot_of_money(client_user, agent_user)

    # a second re-run (directly and through the scheduled run) changes nothing
    again = settle_bot(bot, PERIOD, AS_OF)
    assert not again.created and again.settlement is not None and again.settlement.pk == s.pk
    report = run_settlement(PERIOD, bot.pk)
    assert report.settled == [] and [r.skipped for r in report.results] == ["already settled"]
    assert _snapshot_of_money(client_user, agent_user) == after
    assert Settlement.objects.filter(bot=bot).count() == 1 and CommissionLine.objects.count() == 1
    _audit_ok()
