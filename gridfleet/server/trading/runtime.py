"""Bots running inside the server process (``gridfleet serve``) or a Celery worker (``gridfleet worker``).

:class:`HostedBots` owns an asyncio loop in a background thread with a :class:`ServerBotHost` (a
:class:`~gridfleet.runtime.host.BotHost` that can also remove one bot) and a :class:`DjangoBotStore`. Calls
from Django threads (API views, Celery tasks) are forwarded into the loop with
``asyncio.run_coroutine_threadsafe`` and wait for the result.

:class:`ServerRuntime` is the :class:`~gridfleet.server.trading.service.RuntimeService` of ``gridfleet serve``:
every bot runs in this process; ``Bot.status`` / ``status_message`` follow what happens; on start-up the bots
whose status is ``running`` are resumed (replay + reconcile).

Venues: a paper bot gets its own :class:`PaperExchange` over a price source shared per (exchange, api url); a
live bot gets the ccxt adapter of its exchange account (decrypted keys, the account's ``api_url``), shared by
every bot of that account (one rate limiter per account). The exchange id ``synthetic`` is an offline random-walk
price source (demos, tests, the capacity measurement in docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction

from gridfleet.engine.strategy import strategy_class
from gridfleet.engine.types import PlaceOrder
from gridfleet.exchanges.base import Balance, ExchangeAdapter, OrderInfo, PriceUpdate, TradeInfo
from gridfleet.exchanges.paper import PaperExchange
from gridfleet.markets import MarketRules
from gridfleet.runtime.bot import BotRunner
from gridfleet.runtime.host import BotHost
from gridfleet.server.bots.models import Bot, BotMode, BotStatus
from gridfleet.server.trading.store import DjangoBotStore

log = logging.getLogger("gridfleet.server.runtime")
T = TypeVar("T")

STOPPED_RUN_MESSAGE = "this run was stopped (its log ends with a stop); start the bot again to begin a new run"

#: builds the venue of a bot; the default is :func:`build_venue`
VenueFactory = Callable[[Bot, "HostedBots"], ExchangeAdapter]


# ---------------------------------------------------------------------------------------------------- prices
class SyntheticPrices(ExchangeAdapter):
    """An offline price source: a seeded random walk, ``rate`` updates per second (read-only venue)."""

    id = "synthetic"

    def __init__(self, *, start: Decimal = Decimal(100000), step_pct: float = 0.05, rate: float = 1.0,
                 seed: int = 1) -> None:
        self.start, self.step_pct, self.rate = start, step_pct, rate
        self._rng = random.Random(seed)
        self._price = float(start)

    def _next(self) -> Decimal:
        self._price *= 1 + self._rng.uniform(-self.step_pct, self.step_pct) / 100
        return Decimal(f"{self._price:.2f}")

    async def market(self, symbol: str) -> MarketRules:
        """Return rules with a 0.01 tick and a 0.00001 step."""
        return MarketRules(symbol=symbol, base=symbol.split("/")[0], quote=symbol.split("/")[1],
                           tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))

    async def fetch_price(self, symbol: str) -> PriceUpdate:
        """Return the current price."""
        return PriceUpdate(symbol, Decimal(f"{self._price:.2f}"), int(time.time() * 1000))

    async def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:  # type: ignore[override]
        """Yield a new price every 1/rate seconds (each watcher walks its own path from the same start)."""
        rng = random.Random(self._rng.random())
        price = self._price
        while True:
            await asyncio.sleep(1 / self.rate)
            price *= 1 + rng.uniform(-self.step_pct, self.step_pct) / 100
            yield PriceUpdate(symbol, Decimal(f"{price:.2f}"), int(time.time() * 1000))

    async def fetch_balances(self) -> dict[str, Balance]:  # pragma: no cover - paper accounts answer these
        raise NotImplementedError("synthetic prices only")

    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:  # pragma: no cover
        raise NotImplementedError("synthetic prices only")

    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:  # pragma: no cover
        raise NotImplementedError("synthetic prices only")

    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:  # pragma: no cover
        raise NotImplementedError("synthetic prices only")

    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:  # pragma: no cover
        raise NotImplementedError("synthetic prices only")

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:  # pragma: no cover
        raise NotImplementedError("synthetic prices only")

    async def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:  # type: ignore[override]
        await asyncio.Event().wait()  # pragma: no cover
        yield  # pragma: no cover

    async def close(self) -> None:
        """Nothing to release."""


class _SharedSource(ExchangeAdapter):
    """A price source shared by many paper accounts: closing one paper account does not close it."""

    def __init__(self, inner: ExchangeAdapter) -> None:
        self.inner = inner
        self.id = inner.id

    async def market(self, symbol: str) -> MarketRules:
        return await self.inner.market(symbol)

    async def fetch_price(self, symbol: str) -> PriceUpdate:
        return await self.inner.fetch_price(symbol)

    def watch_prices(self, symbol: str) -> AsyncIterator[PriceUpdate]:
        return self.inner.watch_prices(symbol)

    async def fetch_balances(self) -> dict[str, Balance]:
        return await self.inner.fetch_balances()

    async def create_order(self, symbol: str, order: PlaceOrder) -> OrderInfo:
        return await self.inner.create_order(symbol, order)

    async def cancel_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        return await self.inner.cancel_order(symbol, client_id)

    async def fetch_order(self, symbol: str, client_id: str) -> OrderInfo | None:
        return await self.inner.fetch_order(symbol, client_id)

    async def fetch_open_orders(self, symbol: str) -> list[OrderInfo]:
        return await self.inner.fetch_open_orders(symbol)

    async def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        return await self.inner.fetch_my_trades(symbol, since)

    def watch_my_trades(self, symbol: str) -> AsyncIterator[TradeInfo]:
        return self.inner.watch_my_trades(symbol)

    async def close(self) -> None:
        """Left open: the owner (:class:`HostedBots`) closes the shared source."""


def decrypt_account_keys(account: Any) -> dict[str, str]:
    """Return ``{"apiKey", "secret"[, "password"]}`` of an exchange account (never logged)."""
    try:
        from gridfleet.server.exchange_accounts import crypto  # type: ignore[attr-defined,unused-ignore]

        decrypt: Callable[[str], str] = crypto.decrypt
    except (ImportError, AttributeError):
        from cryptography.fernet import Fernet, MultiFernet

        fernet = MultiFernet([Fernet(k.encode()) for k in settings.FERNET_KEYS])

        def decrypt(token: str) -> str:
            return fernet.decrypt(token.encode()).decode()
    keys = {"apiKey": decrypt(account.api_key_enc), "secret": decrypt(account.secret_enc)}
    if account.password_enc:
        keys["password"] = decrypt(account.password_enc)
    return keys


def build_venue(bot: Bot, hosted: HostedBots) -> ExchangeAdapter:
    """Return the venue of ``bot``: a paper account over a shared price source, or the account's ccxt adapter."""
    from gridfleet.exchanges.factory import create_exchange

    account = bot.exchange_account
    api_url = (account.api_url if account is not None else "") or None
    if bot.mode == BotMode.PAPER:
        key = ("prices", bot.exchange, api_url or "")
        source = hosted.shared.get(key)
        if source is None:
            source = (SyntheticPrices() if bot.exchange == "synthetic"
                      else create_exchange(bot.exchange, api_url=api_url))
            hosted.shared[key] = source
        cfg = strategy_class(bot.strategy).config_model.model_validate(bot.config)
        base, quote = bot.symbol.split("/")
        return PaperExchange(
            _SharedSource(source), bot.symbol,
            balances={quote: Decimal(str(getattr(cfg, "investment", None) or 0)), base: Decimal(0)},
            maker_fee=cfg.fees.maker, taker_fee=cfg.fees.taker,  # type: ignore[attr-defined]
            slippage=getattr(cfg, "slippage", Decimal(0)), participation=getattr(cfg, "participation", None))
    if account is None:
        raise ValueError("a live bot needs an exchange account")
    key = ("account", str(account.pk), "")
    venue = hosted.shared.get(key)
    if venue is None:
        venue = create_exchange(account.exchange or bot.exchange, keys=decrypt_account_keys(account), api_url=api_url)
        hosted.shared[key] = venue
    return _SharedSource(venue)


# ---------------------------------------------------------------------------------------------------- host
class ServerBotHost(BotHost):
    """A :class:`BotHost` whose bots can be removed one by one (their tasks canceled, their venue closed)."""

    def __init__(self, *, reconcile_every: float = 15.0) -> None:
        super().__init__(reconcile_every=reconcile_every)
        self._bot_tasks: dict[str, list[asyncio.Task[None]]] = {}

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.append(task)
        owner, _, what = name.rpartition(":")
        if what != "prices":  # the shared (venue, symbol) price stream belongs to no single bot
            self._bot_tasks.setdefault(owner, []).append(task)

    async def remove(self, bot_id: str) -> BotRunner | None:
        """Stop hosting ``bot_id`` (its orders are left as they are); return its runner."""
        bot = self.bots.pop(bot_id, None)
        for task in self._bot_tasks.pop(bot_id, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(ValueError):
                self._tasks.remove(task)
        if bot is not None:
            subscribers = self._subscribers.get((id(bot.venue), bot.symbol))
            if subscribers is not None and bot in subscribers:
                subscribers.remove(bot)
            if isinstance(bot.venue, PaperExchange):
                with contextlib.suppress(Exception):
                    await bot.venue.close()
        return bot


class HostedBots:
    """Bots hosted by this process: an asyncio loop thread, a :class:`ServerBotHost`, a :class:`DjangoBotStore`."""

    def __init__(self, *, reconcile_every: float = 15.0, venue_factory: VenueFactory | None = None,
                 store: DjangoBotStore | None = None) -> None:
        self.store = store or DjangoBotStore()
        self.venue_factory = venue_factory or build_venue
        self.shared: dict[tuple[str, str, str], ExchangeAdapter] = {}
        self.runners: dict[int, BotRunner] = {}
        self._lock = threading.RLock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gridfleet-bots", daemon=True)
        self._thread.start()
        self.host: ServerBotHost = self.call(self._make_host(reconcile_every))

    @staticmethod
    async def _make_host(reconcile_every: float) -> ServerBotHost:
        return ServerBotHost(reconcile_every=reconcile_every)

    # ------------------------------------------------------------------ loop plumbing
    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the bots' loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the bots' loop and wait for its result."""
        return self.submit(coro).result(timeout)

    # ------------------------------------------------------------------ bots
    def _runner(self, bot: Bot) -> BotRunner:
        cfg = strategy_class(bot.strategy).config_model.model_validate(bot.config)
        venue = self.venue_factory(bot, self)
        return BotRunner(bot.runtime_id, bot.strategy, cfg, bot.symbol, venue, self.store,  # type: ignore[arg-type]
                         exchange=("paper:" if bot.mode == BotMode.PAPER else "") + bot.exchange,
                         on_change=self._on_change)

    def host_bot(self, bot: Bot) -> BotRunner:
        """Build the bot's runner and start it here (replay + reconcile); raise on failure."""
        with self._lock:
            existing = self.runners.get(bot.pk)
            if existing is not None and existing.state not in ("error", "stopped"):
                return existing
            if existing is not None:  # started again after an error or a stop: a fresh runner replays the log
                self.unhost(bot.pk)
            runner = self._runner(bot)
            self.call(self.host.add(runner), timeout=120)
            self.runners[bot.pk] = runner
            return runner

    def unhost(self, bot_pk: int) -> BotRunner | None:
        """Stop hosting a bot without touching its orders (lease lost, shutdown)."""
        with self._lock:
            runner = self.runners.pop(bot_pk, None)
        if runner is not None:
            self.call(self.host.remove(runner.bot_id))
        return runner

    def runner(self, bot_pk: int) -> BotRunner:
        """Return the runner of a bot hosted here."""
        try:
            return self.runners[bot_pk]
        except KeyError:
            raise LookupError(f"bot {bot_pk} is not running in this process") from None

    def _on_change(self, runner: BotRunner) -> None:
        """Mirror a runner that failed (state ``error``) into ``Bot.status`` (runs on the loop thread)."""
        if runner.state == "error" and not getattr(runner, "_error_saved", False):
            runner._error_saved = True  # type: ignore[attr-defined]
            message = runner.error[:500]
            pk = next((k for k, r in self.runners.items() if r is runner), None)
            if pk is not None:
                self.store.run(lambda: set_status(pk, BotStatus.ERROR, message))

    def shutdown(self) -> None:
        """Stop every stream (orders stay on the book), close the venues, stop the loop thread."""
        async def stop_all() -> None:
            await self.host.shutdown(cancel_orders=False)
            for source in self.shared.values():
                with contextlib.suppress(Exception):
                    await source.close()
        with contextlib.suppress(Exception):
            self.call(stop_all(), timeout=30)
        self.runners.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self.store.close()


def set_status(bot_pk: int, status: str, message: str = "") -> None:
    """Set ``Bot.status`` and ``status_message``, and publish a ``bot_status`` event when the realtime app exists."""
    Bot.objects.filter(pk=bot_pk).update(status=status, status_message=message[:500])
    try:
        from gridfleet.server.realtime.notify import publish_bot_status
    except ImportError:
        return
    bot = Bot.objects.filter(pk=bot_pk).first()
    if bot is not None:
        with contextlib.suppress(Exception):
            publish_bot_status(bot)


class ServerRuntime:
    """The :class:`RuntimeService` of ``gridfleet serve``: every bot runs in this process."""

    def __init__(self, *, reconcile_every: float = 15.0, venue_factory: VenueFactory | None = None) -> None:
        self.hosted = HostedBots(reconcile_every=reconcile_every, venue_factory=venue_factory)

    def start(self, bot_id: int) -> None:
        """Start (or resume) a bot here; its status becomes running, or error with the reason."""
        bot = Bot.objects.select_related("exchange_account").get(pk=bot_id)
        try:
            runner = self.hosted.host_bot(bot)
        except Exception as exc:
            log.exception("bot %s did not start", bot_id)
            set_status(bot_id, BotStatus.ERROR, f"start failed: {type(exc).__name__}: {exc}")
            raise
        if runner.state == "stopped":
            # this run's log ends with a stop: replaying it never trades again (e.g. a crash between the stop and
            # its status). Starting the bot through the API begins a new run (trading/runs.py); resuming never does.
            self.hosted.unhost(bot_id)
            set_status(bot_id, BotStatus.STOPPED, STOPPED_RUN_MESSAGE)
            raise RuntimeError(STOPPED_RUN_MESSAGE)
        if runner.state == "error":
            set_status(bot_id, BotStatus.ERROR, runner.error)
        else:
            paused = runner.strategy is not None and runner.strategy.status().get("state") == "paused"
            set_status(bot_id, BotStatus.PAUSED if paused else BotStatus.RUNNING)

    def command(self, bot_id: int, name: str) -> None:
        """Run a strategy command on a bot hosted here."""
        runner = self.hosted.runner(bot_id)
        self.hosted.call(runner.command(name))
        if name == "pause":
            set_status(bot_id, BotStatus.PAUSED)
        elif name == "resume":
            set_status(bot_id, BotStatus.RUNNING)

    def apply_config(self, bot_id: int, config: dict[str, Any]) -> None:
        """Apply a new config to a bot hosted here (the strategy computes the order plan).

        Called inside the API's transaction (which holds the bot row), the change is applied right after that
        transaction commits (``on_commit``): the runtime writes with its own connection and must not wait for a
        lock the caller holds. Otherwise it is applied before returning.
        """
        runner = self.hosted.runner(bot_id)
        cfg = strategy_class(runner.strategy_name).config_model.model_validate(config)
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: self._apply_later(runner, cfg))
        else:
            self.hosted.call(runner.change_config(cfg))

    def _apply_later(self, runner: BotRunner, cfg: Any) -> None:
        future = self.hosted.submit(runner.change_config(cfg))

        def done(f: concurrent.futures.Future[None]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("%s: config change failed: %s", runner.bot_id, exc)
                with contextlib.suppress(Exception):
                    self.hosted.store.log(runner.bot_id, "error", f"config change failed: {exc}")
        future.add_done_callback(done)

    def stop(self, bot_id: int, *, cancel_orders: bool = True, sell_all: bool = False) -> None:
        """Stop a bot (by default its orders are canceled) and stop hosting it."""
        runner = self.hosted.runners.get(bot_id)
        if runner is not None:
            self.hosted.call(runner.stop(cancel_orders=cancel_orders, sell_all=sell_all))
            self.hosted.unhost(bot_id)
        set_status(bot_id, BotStatus.STOPPED)

    def status(self, bot_id: int) -> dict[str, Any] | None:
        """Return the live status of a bot hosted here (None otherwise)."""
        runner = self.hosted.runners.get(bot_id)
        return None if runner is None else runner.status()

    def resume_all(self) -> list[int]:
        """Start every bot whose status is running or paused (server start-up); return the started ids."""
        started = []
        for pk in Bot.objects.filter(status__in=[BotStatus.RUNNING, BotStatus.PAUSED]).values_list("pk", flat=True):
            try:
                self.start(pk)
                started.append(pk)
            except Exception:  # one bot's failure (already in its status) never blocks the others
                continue
        return started

    def shutdown(self) -> None:
        """Stop hosting (orders stay on the book; statuses stay running so the next start resumes them)."""
        self.hosted.shutdown()
