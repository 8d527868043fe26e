"""Binance-style API errors: ``{"code": <negative int>, "msg": "..."}`` with an HTTP status.

The codes and messages are the ones Binance documents (and ccxt maps to its exception classes), see
``errors_spot.json`` in the shared API samples.
"""

from __future__ import annotations

from typing import Any


class BinanceError(Exception):
    """An error the fake exchange answers with, exactly as Binance spot would."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        """Return the JSON body ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}


NUMBER_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


def mandatory(name: str) -> BinanceError:
    """Return the -1102 error for a missing/empty/malformed mandatory parameter."""
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def either_mandatory(first: str, second: str) -> BinanceError:
    """Return the -1102 error for a pair of parameters of which one must be sent."""
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def illegal_chars(name: str, legal: str = NUMBER_PATTERN) -> BinanceError:
    """Return the -1100 error for a parameter with illegal characters."""
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def not_required(name: str) -> BinanceError:
    """Return the -1106 error for a parameter sent when not required."""
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def filter_failure(filter_name: str) -> BinanceError:
    """Return the -1013 error for a failed symbol filter (e.g. ``LOT_SIZE``, ``NOTIONAL``)."""
    return BinanceError(-1013, f"Filter failure: {filter_name}")


INVALID_SYMBOL = (-1121, "Invalid symbol.")
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
DUPLICATE_ORDER = "Duplicate order sent."
UNKNOWN_ORDER = "Unknown order sent."
ORDER_DOES_NOT_EXIST = "Order does not exist."
WOULD_TAKE = "Order would immediately match and take."
INVALID_SIGNATURE = "Signature for this request is not valid."
API_KEY_FORMAT = "API-key format invalid."
REJECTED_API_KEY = "Invalid API-key, IP, or permissions for action."
OUTSIDE_RECV_WINDOW = "Timestamp for this request is outside of the recvWindow."
AHEAD_OF_SERVER = "Timestamp for this request was 1000ms ahead of the server's time."
TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
IP_BANNED = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
UNKNOWN_ERROR = "An unknown error occurred while processing the request."
INTERNAL_ERROR = "Internal error; unable to process your request. Please try again."
