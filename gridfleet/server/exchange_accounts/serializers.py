"""Serializers of exchange accounts: credentials are write-only; responses carry only the masked key."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gridfleet.server.exchange_accounts.models import ExchangeAccount
from gridfleet.server.exchange_accounts.url_policy import ApiUrlError, check_api_url


def known_exchanges() -> list[str]:
    """Return the exchange ids the ccxt adapter knows."""
    import ccxt  # type: ignore[import-untyped]

    return list(ccxt.exchanges)


class ExchangeAccountSerializer(serializers.ModelSerializer[ExchangeAccount]):
    """An exchange account. ``api_key``/``secret``/``password`` are write-only and stored encrypted."""

    api_key = serializers.CharField(write_only=True, max_length=512, trim_whitespace=True,
                                    style={"input_type": "password"})
    secret = serializers.CharField(write_only=True, max_length=1024, trim_whitespace=True,
                                   style={"input_type": "password"})
    password = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=512,
                                     style={"input_type": "password"},
                                     help_text="API passphrase (OKX and a few others)")
    api_key_masked = serializers.CharField(source="api_key_hint", read_only=True)
    api_url = serializers.URLField(required=False, allow_blank=True, max_length=200, help_text=(
        "Point the account at another endpoint (e.g. the local fake exchange). Admins may set any http(s) URL; "
        "others only one allowed by GRIDFLEET_API_URL_ALLOW (by default loopback on the embedded server)."))
    owner = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = ExchangeAccount
        fields = ["id", "owner", "label", "exchange", "api_key", "secret", "password", "api_key_masked", "api_url",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "api_key_masked", "created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            # on update the credentials may be left out (kept); giving api_key and secret replaces them
            for name in ("api_key", "secret"):
                self.fields[name].required = False

    def validate_exchange(self, value: str) -> str:
        """Accept only exchange ids ccxt knows."""
        value = value.strip().lower()
        if value not in known_exchanges():
            raise serializers.ValidationError(f"unknown exchange {value!r}")
        account: ExchangeAccount | None = self.instance  # type: ignore[assignment]
        if account is not None and value != account.exchange and account.bots.exists():
            raise serializers.ValidationError("bots use this account: its exchange cannot change")
        return value

    def validate_api_url(self, value: str) -> str:
        """Only admins may set any URL; others only what ``GRIDFLEET_API_URL_ALLOW`` allows (see url_policy)."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        account: ExchangeAccount | None = self.instance  # type: ignore[assignment]
        try:
            return check_api_url(value or "", is_admin=bool(user is not None and getattr(user, "is_admin_role", False)),
                                 current=account.api_url if account is not None else "")
        except ApiUrlError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """On update, new credentials come as a pair (api_key with secret)."""
        if self.instance is not None and ("api_key" in attrs) != ("secret" in attrs):
            missing = "secret" if "api_key" in attrs else "api_key"
            raise serializers.ValidationError({missing: "give api_key and secret together to replace the key"})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> ExchangeAccount:
        """Encrypt the credentials and create the account."""
        api_key = validated_data.pop("api_key")
        secret = validated_data.pop("secret")
        password = validated_data.pop("password", "")
        account = ExchangeAccount(**validated_data)
        account.set_credentials(api_key, secret, password)
        account.save()
        return account

    def update(self, instance: ExchangeAccount, validated_data: dict[str, Any]) -> ExchangeAccount:
        """Update the label/exchange/URL; replace the credentials when new ones are given."""
        api_key = validated_data.pop("api_key", None)
        secret = validated_data.pop("secret", None)
        password = validated_data.pop("password", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if api_key is not None and secret is not None:
            instance.set_credentials(api_key, secret, password or "")
        elif password is not None:
            from gridfleet.server.exchange_accounts.crypto import encrypt

            instance.password_enc = encrypt(password)
        instance.save()
        return instance


class ConnectionTestSerializer(serializers.Serializer[Any]):
    """Result of a connection test."""

    ok = serializers.BooleanField()
    message = serializers.CharField()
