"""API error handling: bad input is a 400 with a clear message, never a 500."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Handle DRF's exceptions as usual; turn numbers too large for the database into a 400."""
    response = exception_handler(exc, context)
    if response is None and isinstance(exc, OverflowError):
        return Response({"detail": "a number in the request is out of range"}, status=status.HTTP_400_BAD_REQUEST)
    return response
