"""Retry decorator (call counts, delays passed to an injected sleep, jitter bounds) and the shared rate limiter."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridfleet.exchanges.base import (
    AuthenticationError,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    RateLimitError,
)
from gridfleet.exchanges.ratelimit import RateLimiter, RateLimiterRegistry, TokenBucket, shared_limiter
from gridfleet.exchanges.retry import backoff_delay, retrying


class RecordingSleep:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Flaky:
    """An async callable failing with the given errors, then returning ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------------- retrying


def test_transient_errors_are_retried_until_success_with_exponential_delays() -> None:
    sleep = RecordingSleep()
    flaky = Flaky([NetworkError("timeout"), NetworkError("reset"), NetworkError("502")])
    fn = retrying(attempts=5, base_delay=0.2, max_delay=10, jitter=0.0, sleep=sleep)(flaky)
    assert run(fn()) == "ok"
    assert flaky.calls == 4
    assert sleep.delays == pytest.approx([0.2, 0.4, 0.8])


def test_gives_up_after_attempts_and_reraises_the_last_error() -> None:
    sleep = RecordingSleep()
    flaky = Flaky([NetworkError(f"fail {i}") for i in range(10)])
    fn = retrying(attempts=3, jitter=0.0, sleep=sleep)(flaky)
    with pytest.raises(NetworkError, match="fail 2"):
        run(fn())
    assert flaky.calls == 3
    assert len(sleep.delays) == 2  # no sleep after the last attempt


def test_delay_is_capped_at_max_delay() -> None:
    sleep = RecordingSleep()
    flaky = Flaky([NetworkError("x")] * 6)
    fn = retrying(attempts=7, base_delay=1.0, max_delay=5.0, jitter=0.0, sleep=sleep)(flaky)
    run(fn())
    assert sleep.delays == pytest.approx([1, 2, 4, 5, 5, 5])


@pytest.mark.parametrize(
    "error",
    [InvalidOrder("MIN_NOTIONAL"), InsufficientFunds("no USDT"), AuthenticationError("bad key"), KeyError("bug")],
)
def test_non_transient_errors_are_never_retried(error: BaseException) -> None:
    sleep = RecordingSleep()
    flaky = Flaky([error])
    fn = retrying(attempts=5, sleep=sleep)(flaky)
    with pytest.raises(type(error)):
        run(fn())
    assert flaky.calls == 1
    assert sleep.delays == []


def test_rate_limit_retry_after_is_honoured_even_above_max_delay() -> None:
    sleep = RecordingSleep()
    flaky = Flaky([RateLimitError("429", retry_after=30.0), RateLimitError("429", retry_after=None)])
    fn = retrying(attempts=5, base_delay=0.2, max_delay=10, jitter=0.0, sleep=sleep)(flaky)
    assert run(fn()) == "ok"
    assert sleep.delays == pytest.approx([30.0, 0.4])  # retry_after, then plain backoff when unknown


def test_bare_decorator_uses_the_defaults() -> None:
    calls = 0

    @retrying
    async def read() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert run(read()) == 7
    assert calls == 1
    assert read.__name__ == "read"


def test_jitter_is_injectable_and_bounded() -> None:
    low = RecordingSleep()
    high = RecordingSleep()
    run(retrying(attempts=2, base_delay=1.0, jitter=0.2, sleep=low, rand=lambda: 0.0)(Flaky([NetworkError("x")]))())
    run(retrying(attempts=2, base_delay=1.0, jitter=0.2, sleep=high, rand=lambda: 1.0)(Flaky([NetworkError("x")]))())
    assert low.delays == pytest.approx([0.8])
    assert high.delays == pytest.approx([1.2])


@given(retry=st.integers(min_value=1, max_value=40), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_backoff_delay_stays_within_jitter_bounds(retry: int, seed: int) -> None:
    rng = random.Random(seed)
    nominal = min(10.0, 0.2 * 2 ** (retry - 1))
    delay = backoff_delay(retry, base_delay=0.2, max_delay=10.0, jitter=0.2, rand=rng.random)
    assert nominal * 0.8 - 1e-12 <= delay <= nominal * 1.2 + 1e-12


def test_each_retry_is_logged_at_warning_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-api-key-0123456789"
    flaky = Flaky([NetworkError(f"GET /account apiKey={secret}")])
    fn = retrying(attempts=2, sleep=RecordingSleep(), redact=lambda text: text.replace(secret, "***"))(flaky)
    with caplog.at_level(logging.WARNING, logger="gridfleet.exchanges.retry"):
        run(fn())
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    assert "retry 1/1" in record.getMessage()
    assert secret not in caplog.text


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        retrying(attempts=0)


# ---------------------------------------------------------------------------------------------------- rate limiting


class FakeClock:
    """Virtual monotonic clock: a sleeper yields to the event loop, then the clock jumps to its wake-up time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        wake = self.now + delay
        await asyncio.sleep(0)
        self.now = max(self.now, wake)


def test_token_bucket_allows_a_burst_then_paces_requests_by_weight() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, clock=clock, sleep=clock.sleep)  # 10 weight per second

    async def scenario() -> None:
        for _ in range(10):
            await bucket.acquire(1)
        assert clock.sleeps == []
        await bucket.acquire(5)  # 5 more weight: half a second of refill
        assert clock.sleeps == pytest.approx([0.5])
        clock.now += 0.2  # 2 tokens refilled
        await bucket.acquire(2)
        assert clock.sleeps == pytest.approx([0.5])

    run(scenario())


def test_token_bucket_refills_only_up_to_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, 2.0, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    assert bucket.available == pytest.approx(4)


def test_token_bucket_serves_concurrent_callers_in_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, 1.0, clock=clock, sleep=clock.sleep)  # 2 per second
    done: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await bucket.acquire(1)
        done.append((i, clock.now))

    async def scenario() -> None:
        await asyncio.gather(*(caller(i) for i in range(6)))

    run(scenario())
    # 2 at once, then one every 0.5 s (FIFO)
    assert [i for i, _ in done] == [0, 1, 2, 3, 4, 5]
    assert clock.sleeps[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_back_off_after_429_makes_every_caller_wait_then_restarts_empty() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        await bucket.back_off(3.0)
        assert bucket.blocked_until == pytest.approx(1003.0)
        await bucket.acquire(1)
        assert clock.now == pytest.approx(1003.1)  # waited for the back-off, then for one token of refill
        await bucket.acquire(1)
        assert clock.now == pytest.approx(1003.2)

    run(scenario())
    assert bucket.blocked_until is None


def test_a_back_off_announced_while_waiting_applies_to_the_waiter() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 1.0, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        await bucket.acquire(1)
        waiter = asyncio.create_task(bucket.acquire(1))
        await asyncio.sleep(0)  # the waiter reserved its token and sleeps (fake sleep returns at once)
        await bucket.back_off(10.0)
        await waiter

    run(scenario())
    assert clock.now >= 1000.0 + 10.0 - 1e-9


def test_a_request_heavier_than_the_capacity_waits_for_its_deficit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, 1.0, clock=clock, sleep=clock.sleep)
    run(bucket.acquire(40))  # e.g. Binance ticker for all symbols
    assert clock.sleeps == pytest.approx([1.0])


def test_registry_shares_one_limiter_per_exchange_and_endpoint() -> None:
    registry = RateLimiterRegistry()
    a = registry.get("binance")
    assert registry.get("Binance", None) is a
    assert registry.get("binance", "http://127.0.0.1:8000/") is registry.get("binance", "http://127.0.0.1:8000")
    assert registry.get("binance", "http://127.0.0.1:8000") is not a
    assert registry.get("okx") is not a
    assert isinstance(a, RateLimiter)
    custom = TokenBucket(1, 1)
    registry.set("bybit", None, custom)
    assert shared_limiter("bybit", registry=registry) is custom
