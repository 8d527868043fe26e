"""Fixtures of the exchange-account tests (shared with the bot tests)."""

from __future__ import annotations

from tests.server.bots.conftest import client_for, users  # noqa: F401
