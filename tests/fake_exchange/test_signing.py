"""Signatures: the Binance documentation example, raw hand-signed requests, and the auth error codes."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import aiohttp

from gridfleet.backtest.data import Candles
from gridfleet.fake_exchange.signing import hmac_sha256, rest_payload, signature_matches, strip_signature, ws_payload
from tests.fake_exchange.helpers import fake_and_ccxt, run


def test_binance_documentation_example() -> None:
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
             "&timestamp=1499827319559")
    expected = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert hmac_sha256(secret, query) == expected
    # the documented "mixed" variant: part in the query string, the rest in the body, concatenated as sent
    body = f"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature={expected}"
    payload, signature = rest_payload("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC", body)
    assert payload == ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
                       "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
    assert signature == expected
    assert signature_matches(secret, query, expected.upper())
    assert not signature_matches(secret, query + "&x=1", expected)


def test_strip_signature_and_ws_payload() -> None:
    assert strip_signature("a=1&signature=ff&b=2") == ("a=1&b=2", "ff")
    assert strip_signature("") == ("", None)
    params = {"timestamp": 5, "apiKey": "k", "signature": "x", "flag": True}
    assert ws_payload(params) == "apiKey=k&flag=true&timestamp=5"


def test_hand_signed_raw_requests_and_auth_errors(candles: Candles) -> None:
    async def scenario() -> None:
        async with fake_and_ccxt(candles, load=False) as (fx, _ex), aiohttp.ClientSession() as session:
            async def call(method: str, path: str, params: dict[str, str], *, key: str | None = "test",
                           secret: str = "test", in_body: bool = False) -> tuple[int, dict[str, object]]:
                query = urlencode(params)
                signed = f"{query}&signature={hmac_sha256(secret, query)}"
                headers = {"X-MBX-APIKEY": key} if key is not None else {}
                url = f"{fx.base_url}{path}"
                if in_body:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                    async with session.request(method, url, data=signed, headers=headers) as resp:
                        return resp.status, await resp.json()
                async with session.request(method, f"{url}?{signed}", headers=headers) as resp:
                    return resp.status, await resp.json()

            now = str(int(time.time() * 1000))
            status, body = await call("GET", "/api/v3/account", {"timestamp": now})
            assert status == 200 and body["accountType"] == "SPOT"
            order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "0.01000", "price": "100000.00", "newClientOrderId": "raw-1",
                     "recvWindow": "5000", "timestamp": now}
            status, body = await call("POST", "/api/v3/order", order, in_body=True)
            assert status == 200 and body["clientOrderId"] == "raw-1" and body["status"] == "NEW"
            assert body["fills"] == []  # LIMIT defaults to the FULL response
            status, body = await call("GET", "/api/v3/account", {"timestamp": now}, secret="other")
            assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
            status, body = await call("GET", "/api/v3/account", {"timestamp": now}, key=None)
            assert (status, body["code"]) == (401, -2014)
            status, body = await call("GET", "/api/v3/account", {"timestamp": now}, key="unknown")
            assert (status, body["code"]) == (401, -2015)
            status, body = await call("GET", "/api/v3/account", {"timestamp": str(int(now) - 10_000)})
            assert (status, body) == (400, {"code": -1021,
                                            "msg": "Timestamp for this request is outside of the recvWindow."})
            status, body = await call("GET", "/api/v3/account", {"timestamp": str(int(now) - 10_000),
                                                                 "recvWindow": "60000"})
            assert status == 200
            status, body = await call("GET", "/api/v3/account", {})
            assert body["code"] == -1102 and "'timestamp'" in str(body["msg"])
            async with session.get(f"{fx.base_url}/api/v3/account?timestamp={now}",
                                   headers={"X-MBX-APIKEY": "test"}) as resp:
                assert (await resp.json())["code"] == -1102  # no signature

    run(scenario())
