"""The runtime service interface the API calls to drive bots (implemented by the runtime integration)."""

from __future__ import annotations

from typing import Any, Protocol


class RuntimeService(Protocol):
    """Start, command and stop bots wherever they run (in-process for ``gridfleet serve``, Celery workers)."""

    def start(self, bot_id: int) -> None:
        """Start (or resume after a crash) the bot with this primary key."""

    def command(self, bot_id: int, name: str) -> None:
        """Run a strategy command: pause, resume, stop_buying, resume_buying, retry_suspended."""

    def apply_config(self, bot_id: int, config: dict[str, Any]) -> None:
        """Apply a validated new config to a running bot (the strategy computes the order plan)."""

    def stop(self, bot_id: int, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        """Stop the bot."""

    def status(self, bot_id: int) -> dict[str, Any] | None:
        """Return the live status of a running bot (None when it is not running here)."""


_service: RuntimeService | None = None


def set_runtime(service: RuntimeService | None) -> None:
    """Install the runtime service (done at start-up by serve/worker; tests install a fake)."""
    global _service
    _service = service


def get_runtime() -> RuntimeService:
    """Return the installed runtime service."""
    if _service is None:
        raise RuntimeError("no bot runtime is installed in this process")
    return _service
