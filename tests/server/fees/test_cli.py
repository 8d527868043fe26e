"""``gridfleet billing settle``: prints what it settled; one-line errors and non-zero exits on failure."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from gridfleet.server.fees.models import Settlement, UserFeeProfile
from gridfleet.server.users.models import User
from tests.server.fees.conftest import add_snapshot, day, fund, make_priced_bot

billing_cmd = pytest.importorskip("gridfleet.cli.billing_cmd")
runner = CliRunner()


def _invoke(*args: str) -> Any:
    return runner.invoke(billing_cmd.app, ["settle", *args])


@pytest.fixture
def bot(make_user: Callable[..., User]) -> Any:
    alice = make_user("alice")
    UserFeeProfile.objects.create(user=alice, rate=Decimal("0.1"))
    fund(alice, "100")
    bot = make_priced_bot(alice)
    add_snapshot(bot, day(1), "110")
    return bot


def test_settle_prints_what_it_settled_and_is_idempotent(bot: Any) -> None:
    result = _invoke("--period", "2026-01-06")
    assert result.exit_code == 0, result.output
    assert f"bot {bot.pk}: period 2026-01-06 net profit 100" in result.output
    assert "fee 10" in result.output and "1 settled" in result.output
    again = _invoke("--period", "2026-01-06", "--bot", str(bot.pk))
    assert again.exit_code == 0 and "skipped (already settled)" in again.output and "0 settled" in again.output
    assert Settlement.objects.filter(bot=bot).count() == 1


def test_bad_period_is_a_one_line_error(bot: Any) -> None:
    result = _invoke("--period", "not-a-date")
    assert result.exit_code != 0
    assert "period" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not Settlement.objects.exists()


def test_unknown_bot_fails(bot: Any) -> None:
    result = _invoke("--bot", "999999")
    assert result.exit_code != 0 and "does not exist" in result.output


def test_a_failed_settlement_exits_non_zero(bot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridfleet.server.fees import services

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("price feed down")

    monkeypatch.setattr(services, "mark_bot", broken)
    result = _invoke("--period", "2026-01-06")
    assert result.exit_code != 0
    assert "price feed down" in result.output and "1 settlement(s) failed" in result.output
    assert not Settlement.objects.exists()
