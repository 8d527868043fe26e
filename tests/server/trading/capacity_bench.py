"""How many paper bots one worker process hosts: bots × price updates/s at < 50 % of one core.

    .venv/bin/python tests/server/trading/capacity_bench.py --bots 100 200 400 --rate 1 --seconds 20

Each bot is a 50-level paper grid (±2.5 % around 100,000) with its own synthetic random-walk price stream
(``rate`` updates/s, steps up to ±``step`` %). With ``--step 0.2`` levels 0.1 % apart are crossed all the
time (fills, orders, events and journal lines are written: a very volatile market, the expensive case); with
``--step 0.02`` (BTC's typical second-to-second move) most updates write nothing. The bots run exactly as in
``gridfleet serve`` / ``gridfleet worker``: one :class:`HostedBots` (asyncio loop thread + DjangoBotStore DB
thread). Database: ``DATABASE_URL`` if set, else a
temporary SQLite file. CPU% = process CPU time / wall time over the measuring window (after start-up).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--step", type=float, default=0.2, help="largest move per update, percent")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("GRIDFLEET_DB", str(Path(tmp) / "bench.sqlite3"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "gridfleet.server.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from gridfleet.server.bots.models import Bot, BotStatus
    from gridfleet.server.trading import models as m
    from gridfleet.server.trading.runtime import HostedBots, SyntheticPrices, build_venue
    from gridfleet.server.users.models import User

    config = {"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": "97500", "upper": "102500", "levels": 50},
              "qty_per_order": "0.001", "investment": "10000", "slippage": "0"}
    owner, _ = User.objects.get_or_create(username="bench")
    print(f"database: {connection.vendor}; rate {args.rate}/s per bot; step ±{args.step}%; window {args.seconds}s")
    print("bots  updates/s  cpu%   fills/s  events/s  start(s)")
    for n in args.bots:
        def venue(bot: Bot, hosted: HostedBots, rate: float = args.rate):
            hosted.shared.setdefault(("prices", "synthetic", ""), SyntheticPrices(rate=rate, seed=bot.pk,
                                                                                    step_pct=args.step))
            return build_venue(bot, hosted)

        hosted = HostedBots(reconcile_every=3600, venue_factory=venue)
        bots = [Bot.objects.create(owner=owner, name=f"bench{i}", exchange="synthetic", symbol="BTC/USDT",
                                   config=config, status=BotStatus.RUNNING) for i in range(n)]
        t0 = time.monotonic()
        for bot in bots:
            hosted.host_bot(bot)
        started = time.monotonic() - t0
        time.sleep(2)
        fills0 = m.Fill.objects.filter(bot__in=bots).count()
        events0 = m.BotEventLog.objects.filter(bot__in=bots).count()
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        fills = m.Fill.objects.filter(bot__in=bots).count() - fills0
        events = m.BotEventLog.objects.filter(bot__in=bots).count() - events0
        print(f"{n:4d}  {n * args.rate:9.0f}  {100 * cpu / wall:5.1f}  {fills / wall:7.1f}  {events / wall:8.1f}"
              f"  {started:7.1f}", flush=True)
        hosted.shutdown()
        Bot.objects.filter(pk__in=[b.pk for b in bots]).update(status=BotStatus.STOPPED)


if __name__ == "__main__":
    main()
