"""``gridfleet billing …``: ledger audit (and settlement, added by the fees app) against the server's database.

The database is the server's: ``GRIDFLEET_DB`` (SQLite) or ``DATABASE_URL`` (PostgreSQL), as for ``gridfleet serve``.

* ``gridfleet billing audit``: check every ledger invariant (:mod:`gridfleet.server.billing.audit`); print each
  check with what it counted; exit 0 only when all hold, else 1 with one line per failure.
"""

from __future__ import annotations

import importlib
import json
from typing import Annotated, Any

import typer

from gridfleet.cli.common import console, fail

app = typer.Typer(no_args_is_help=True, help="Billing: ledger audit and fee settlement.")


def _django() -> None:
    from gridfleet.cli.serve_cmd import setup_django

    setup_django()


def _mod(name: str) -> Any:
    """Import a server module lazily and untyped (Django ships no stubs)."""
    return importlib.import_module(name)


# ---------------------------------------------------------------------------------------------------- audit
@app.command("audit")
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the ledger: every transaction and the whole ledger sum to zero, cached balances equal their entries,
    no wallet or agent payable is negative, idempotency keys are unique, reversals stay within what they reverse."""
    _django()
    db = _mod("django.db")
    try:
        report = _mod("gridfleet.server.billing.audit").run_audit()
    except (db.OperationalError, db.ProgrammingError) as exc:
        fail(f"cannot read the ledger ({str(exc).strip().splitlines()[0]}): is the database migrated "
             "(gridfleet serve migrates it)?")
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "checks": [
            {"name": c.name, "checked": c.checked, "failed": c.failed, "failures": c.failures}
            for c in report.checks]}, indent=2))
    else:
        for check in report.checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            console.print(f"{mark} {check.name} ({check.checked} checked"
                          + (f", {check.failed} failed)" if check.failed else ")"))
        for line in report.failures:
            console.print(f"[red]error:[/] {line}", highlight=False, soft_wrap=True)
        console.print("[green]ledger audit passed[/]" if report.ok else
                      f"[red]ledger audit failed: {sum(c.failed for c in report.checks)} problem(s)[/]")
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------------- settle
# `gridfleet billing settle` is added here by the fees app (gridfleet/server/fees): register it on `app`.
@app.command("settle")
def settle(
    period: Annotated[str | None, typer.Option(
        "--period", help="A date (YYYY-MM-DD) in the period to settle; default: the last completed period.")] = None,
    bot: Annotated[int | None, typer.Option("--bot", help="Settle only this bot (id).")] = None,
) -> None:
    """Settle profit-share fees now (idempotent per bot and period) and print what was settled; exit 1 when a
    settlement failed (a re-run retries it), 2 on bad input."""
    from decimal import Decimal

    _django()
    services = _mod("gridfleet.server.fees.services")
    db = _mod("django.db")
    try:
        report = services.run_settlement(period, bot, reason="manual")
    except services.FeeError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc).strip().splitlines()[0])
    except (db.OperationalError, db.ProgrammingError) as exc:
        fail(f"cannot read the database ({str(exc).strip().splitlines()[0]}): is it migrated?")
    unit = Decimal(10) ** -8
    failed = 0
    for result in report.results:
        line = result.settlement
        if result.created and line is not None:
            console.print(f"bot {result.bot_id}: period {result.period} net profit "
                          f"{(line.net_profit_units * unit).normalize():f} fee {(line.fee_units * unit).normalize():f}"
                          f" ({line.status})", highlight=False)
        elif result.skipped.startswith("failed"):
            failed += 1
            console.print(f"bot {result.bot_id}: {result.skipped}", highlight=False, soft_wrap=True)
        else:
            console.print(f"bot {result.bot_id}: skipped ({result.skipped})", highlight=False, soft_wrap=True)
    console.print(f"period {report.period}: {len(report.settled)} settled, fees {report.total_fees().normalize():f}, "
                  f"{failed} failed", highlight=False)
    if failed:
        fail(f"{failed} settlement(s) failed (see above); re-run to retry them", code=1)
