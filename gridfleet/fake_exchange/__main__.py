"""``python -m gridfleet.fake_exchange [options]``: the fake exchange, same options as ``gridfleet fake-exchange``."""

from __future__ import annotations

import typer

from gridfleet.cli.fake_exchange_cmd import register


def main() -> None:
    """Build a one-command Typer app around ``fake-exchange`` and run it."""
    app = typer.Typer(add_completion=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
