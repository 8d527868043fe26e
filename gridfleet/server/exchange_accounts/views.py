"""Exchange account endpoints: CRUD (credentials write-only) and a connection test."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from gridfleet.server.bots.serializers import BotErrorSerializer
from gridfleet.server.exchange_accounts.crypto import DecryptionError
from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.exchange_accounts.serializers import ConnectionTestSerializer, ExchangeAccountSerializer
from gridfleet.server.users.permissions import OwnerWritePermission, scope_queryset

logger = logging.getLogger(__name__)

CONNECTION_TIMEOUT_S = 20.0
IN_USE = OpenApiResponse(response=BotErrorSerializer, description="bots still use the account")


def _scrub(text: str, secrets: list[str]) -> str:
    """Remove every secret (and anything after 'signature=') from a message meant for the user."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if "signature=" in text:
        text = text.split("signature=")[0] + "signature=***"
    return text[:300]


async def _fetch_balances(account: ExchangeAccount, keys: dict[str, str]) -> int:
    from gridfleet.exchanges.factory import create_exchange

    adapter = create_exchange(account.exchange, keys=keys, api_url=account.api_url or None, websocket=False)
    try:
        balances = await asyncio.wait_for(adapter.fetch_balances(), CONNECTION_TIMEOUT_S)
    finally:
        await adapter.close()
    return sum(1 for b in balances.values() if b.total)


def check_connection(account: ExchangeAccount) -> dict[str, Any]:
    """Read the balances with the account's keys; return ``{ok, message}`` (never a secret)."""
    from gridfleet.exchanges.base import AuthenticationError, ExchangeError, NetworkError

    try:
        keys = account.credentials()
    except DecryptionError as exc:
        return {"ok": False, "message": str(exc)}
    secrets = list(keys.values())
    try:
        assets = async_to_sync(_fetch_balances)(account, keys)
    except AuthenticationError as exc:
        return {"ok": False, "message": _scrub(f"authentication failed: {exc}", secrets)}
    except TimeoutError:
        return {"ok": False, "message": f"no answer from {account.exchange} within {CONNECTION_TIMEOUT_S:g} s"}
    except NetworkError as exc:
        return {"ok": False, "message": _scrub(f"network error: {exc}", secrets)}
    except ExchangeError as exc:
        return {"ok": False, "message": _scrub(f"{type(exc).__name__}: {exc}", secrets)}
    except Exception as exc:  # any adapter failure is a failed test, reported without secrets
        logger.warning("connection test of exchange account %s failed: %s", account.pk, type(exc).__name__)
        return {"ok": False, "message": _scrub(f"{type(exc).__name__}: {exc}", secrets)}
    return {"ok": True, "message": f"connected to {account.exchange}: {assets} assets with a balance"}


@extend_schema_view(
    list=extend_schema(summary="List exchange accounts", tags=["exchange accounts"]),
    retrieve=extend_schema(summary="Get an exchange account", tags=["exchange accounts"]),
    create=extend_schema(summary="Add an exchange account (key, secret, password are write-only)",
                         tags=["exchange accounts"]),
    update=extend_schema(summary="Replace an exchange account", tags=["exchange accounts"]),
    partial_update=extend_schema(summary="Change an exchange account", tags=["exchange accounts"]),
    destroy=extend_schema(summary="Delete an exchange account (refused while bots use it)",
                          tags=["exchange accounts"], responses={204: None, 409: IN_USE}),
)
class ExchangeAccountViewSet(viewsets.ModelViewSet[ExchangeAccount]):
    """The caller's exchange accounts (agents read their clients', admins all)."""

    serializer_class = ExchangeAccountSerializer
    permission_classes = [IsAuthenticated, OwnerWritePermission]
    filterset_fields = ["exchange"]
    ordering_fields = ["id", "label", "created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[ExchangeAccount]:
        """Return the accounts in the caller's scope."""
        return scope_queryset(ExchangeAccount.objects.all(), self.request.user)  # type: ignore[arg-type]

    def perform_create(self, serializer: Any) -> None:
        """Create the account for the caller."""
        account = serializer.save(owner=self.request.user)
        logger.info("exchange account %s (%s) created by user %s", account.pk, account.exchange,
                    self.request.user.pk)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete, unless bots still use the account (409)."""
        account = self.get_object()
        try:
            account.delete()
        except ProtectedError:
            return Response({"detail": "bots still use this exchange account; delete or move them first"},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Test the connection (reads the balances with the stored keys)", request=None,
                   responses=ConnectionTestSerializer, tags=["exchange accounts"])
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Run a connection test and return ``{ok, message}``."""
        account = self.get_object()
        result = check_connection(account)
        logger.info("connection test of exchange account %s: ok=%s", account.pk, result["ok"])
        return Response(ConnectionTestSerializer(result).data)
