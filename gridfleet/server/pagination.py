"""The API's default pagination: ``?limit=&offset=`` with a cap, so a huge limit is clamped, never a 500."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """Limit/offset pages of 50 by default and at most 1000; an out-of-range limit or offset is clamped."""

    max_limit = 1000
    max_offset = 2**62

    def get_offset(self, request):  # type: ignore[no-untyped-def]
        """Return the offset, clamped to what the database's 64-bit integers hold."""
        return min(super().get_offset(request), self.max_offset)
