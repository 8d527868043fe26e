"""Host many bots in one asyncio process.

Each venue (one per account) is shared by the bots that trade on it; each (venue, symbol) price stream is
subscribed once and fanned out to its bots; each bot's handlers are serialised by the bot's own lock, and an
exception in one bot stops that bot (state ``error``) without touching the others. Besides the streams, every bot
is reconciled periodically, so a lost websocket event or a dropped response is repaired within one period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable

from gridfleet.exchanges.base import ExchangeAdapter, NetworkError, PriceUpdate
from gridfleet.exchanges.paper import PaperExchange
from gridfleet.runtime.bot import BotRunner

log = logging.getLogger("gridfleet.runtime")


class BotHost:
    """Runs bots until stopped."""

    def __init__(self, *, reconcile_every: float = 15.0) -> None:
        self.reconcile_every = reconcile_every
        self.bots: dict[str, BotRunner] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: dict[tuple[int, str], list[BotRunner]] = defaultdict(list)
        self._stopping = asyncio.Event()

    async def add(self, bot: BotRunner) -> None:
        """Start ``bot`` (replay + reconcile) and its streams."""
        await bot.start()
        self.bots[bot.bot_id] = bot
        key = (id(bot.venue), bot.symbol)
        first = key not in self._subscribers
        self._subscribers[key].append(bot)
        if isinstance(bot.venue, PaperExchange):
            self._spawn(self._paper_loop(bot), f"{bot.bot_id}:paper")
        else:
            if first:
                self._spawn(self._price_loop(bot.venue, bot.symbol), f"{bot.symbol}:prices")
            self._spawn(self._trade_loop(bot), f"{bot.bot_id}:trades")
        self._spawn(self._reconcile_loop(bot), f"{bot.bot_id}:reconcile")

    async def run_until_stopped(self) -> None:
        """Wait until :meth:`request_stop`."""
        await self._stopping.wait()

    def request_stop(self) -> None:
        """Ask :meth:`run_until_stopped` to return."""
        self._stopping.set()

    async def shutdown(self, *, cancel_orders: bool = False) -> None:
        """Stop the streams; with ``cancel_orders`` also stop every bot (cancelling its orders)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if cancel_orders:
            for bot in self.bots.values():
                await self._guard(bot, bot.stop(cancel_orders=True))
        venues = {id(b.venue): b.venue for b in self.bots.values()}
        for venue in venues.values():
            with contextlib.suppress(Exception):
                await venue.close()

    # ------------------------------------------------------------------ loops
    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.ensure_future(coro))
        log.debug("started %s", name)

    async def _guard(self, bot: BotRunner, coro: Awaitable[None]) -> None:
        """Run a bot handler; one bot's failure never stops the host."""
        try:
            await coro
        except NetworkError as exc:
            log.warning("%s: network: %s", bot.bot_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the strategy or the runner broke: stop this bot only
            log.exception("%s: stopped by an error", bot.bot_id)
            bot.state, bot.error = "error", f"{type(exc).__name__}: {exc}"
            bot.store.log(bot.bot_id, "error", bot.error)

    async def _price_loop(self, venue: ExchangeAdapter, symbol: str) -> None:
        key = (id(venue), symbol)
        while True:
            try:
                async for update in venue.watch_prices(symbol):
                    for bot in list(self._subscribers[key]):
                        if bot.state == "running":
                            await self._guard(bot, bot.on_price(update))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s price stream: %s; reconnecting", symbol, exc)
                await asyncio.sleep(1.0)

    async def _paper_loop(self, bot: BotRunner) -> None:
        venue = bot.venue
        assert isinstance(venue, PaperExchange)

        async def on_update(update: PriceUpdate) -> None:
            async with bot.lock:
                bot.price = update.price
                await venue.advance(update, on_fill=lambda t: bot.on_trade(t, locked=True), on_wake=bot.on_wake,
                                    wake_prices=bot.wake_prices)
            bot._changed()

        while True:
            try:
                async for update in venue.watch_prices(bot.symbol):
                    if bot.state == "running":
                        await self._guard(bot, on_update(update))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s paper price stream: %s; reconnecting", bot.symbol, exc)
                await asyncio.sleep(1.0)

    async def _trade_loop(self, bot: BotRunner) -> None:
        while True:
            try:
                async for trade in bot.venue.watch_my_trades(bot.symbol):
                    await self._guard(bot, bot.on_trade(trade))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s trade stream: %s; reconnecting", bot.bot_id, exc)
                await asyncio.sleep(1.0)

    async def _reconcile_loop(self, bot: BotRunner) -> None:
        while True:
            await asyncio.sleep(self.reconcile_every)
            if bot.state in ("running", "stopped"):
                await self._guard(bot, bot.reconcile())


