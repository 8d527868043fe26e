"""Request and response bodies of the users, auth and agents endpoints."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from rest_framework import serializers

from gridfleet.server.users.models import Role, User


def check_password_rules(password: str, user: User) -> None:
    """Run Django's password validators; raise a DRF error with their messages."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(list(exc.messages)) from exc


class RegisterSerializer(serializers.ModelSerializer[User]):
    """Sign-up: a plain user, under an agent when a valid referral code is given."""

    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    email = serializers.EmailField()
    referral_code = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=16)

    class Meta:
        model = User
        fields = ["id", "username", "email", "password", "referral_code", "role"]
        read_only_fields = ["id", "role"]

    def validate_email(self, value: str) -> str:
        """Refuse an e-mail address already used (password resets go by e-mail)."""
        value = User.objects.normalize_email(value)
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError("A user with that email already exists.")
        return value

    def validate_referral_code(self, value: str) -> User | None:
        """Turn the code into its agent; an unknown code is an error (an empty one means none)."""
        code = value.strip().upper()
        if not code:
            return None
        agent = User.objects.filter(referral_code=code, role=Role.AGENT, is_active=True).first()
        if agent is None:
            raise serializers.ValidationError("Unknown referral code.")
        return agent

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the password against the validators (similarity to username and e-mail included)."""
        probe = User(username=attrs.get("username", ""), email=attrs.get("email", ""))
        try:
            check_password_rules(attrs["password"], probe)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"password": exc.detail}) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> User:
        """Create the user (role user, hashed password)."""
        agent = validated_data.pop("referral_code", None)
        return User.objects.create_user(validated_data["username"], email=validated_data["email"],
                                        password=validated_data["password"], role=Role.USER, agent=agent)


class LogoutSerializer(serializers.Serializer[Any]):
    """The refresh token to revoke."""

    refresh = serializers.CharField()


class DetailSerializer(serializers.Serializer[Any]):
    """A short human-readable confirmation."""

    detail = serializers.CharField()


def _validate_webhook(value: str) -> str:
    if value:
        URLValidator(schemes=["http", "https"])(value)
    return value


class MeSerializer(serializers.ModelSerializer[User]):
    """The caller's own account: e-mail and alert webhook are editable."""

    webhook_url = serializers.CharField(max_length=500, required=False, allow_blank=True,
                                        validators=[_validate_webhook],
                                        help_text="http(s) URL receiving alerts as JSON POSTs; empty: none.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "agent", "referral_code", "webhook_url", "date_joined",
                  "last_login"]
        read_only_fields = ["id", "username", "role", "agent", "referral_code", "date_joined", "last_login"]

    def validate_email(self, value: str) -> str:
        """Refuse an e-mail address used by another account."""
        value = User.objects.normalize_email(value)
        assert self.instance is not None
        if value and User.objects.filter(email__iexact=value).exclude(pk=self.instance.pk).exists():
            raise serializers.ValidationError("A user with that email already exists.")
        return value


class PasswordChangeSerializer(serializers.Serializer[Any]):
    """Change one's password, proving the old one."""

    old_password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    new_password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})

    def validate_old_password(self, value: str) -> str:
        """Check the current password."""
        if not self.context["request"].user.check_password(value):
            raise serializers.ValidationError("Wrong password.")
        return value

    def validate_new_password(self, value: str) -> str:
        """Run the password validators."""
        check_password_rules(value, self.context["request"].user)
        return value


class PasswordResetSerializer(serializers.Serializer[Any]):
    """Ask for a reset e-mail."""

    email = serializers.EmailField()


class PasswordResetConfirmSerializer(serializers.Serializer[Any]):
    """Set a new password with the uid and token from the reset e-mail."""

    uid = serializers.CharField()
    token = serializers.CharField()
    new_password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class UserSerializer(serializers.ModelSerializer[User]):
    """A user as admins (read-write) and agents (read-only, their clients) see it."""

    agent = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), allow_null=True, required=False,
                                               help_text="id of the agent this user belongs to (null: none)")

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "agent", "is_active", "referral_code", "webhook_url",
                  "date_joined", "last_login"]
        read_only_fields = ["id", "username", "email", "referral_code", "webhook_url", "date_joined", "last_login"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Keep the agent tree sound and never let an admin lock itself out."""
        user = self.instance
        assert user is not None
        request_user = self.context["request"].user
        role = attrs.get("role", user.role)
        agent = attrs.get("agent", user.agent)
        errors: dict[str, str] = {}
        if "agent" in attrs and agent is not None:
            if agent.pk == user.pk:
                errors["agent"] = "A user cannot be its own agent."
            elif agent.role != Role.AGENT:
                errors["agent"] = f"{agent.username} is not an agent."
            else:
                seen, up = set(), agent
                while up is not None and up.pk not in seen:
                    if up.pk == user.pk:
                        errors["agent"] = f"{agent.username} is (indirectly) a client of {user.username}: no cycles."
                        break
                    seen.add(up.pk)
                    up = up.agent
        if role == Role.AGENT and agent is not None and "agent" not in errors:
            # agents may sit under one parent agent (a sub-agent), never deeper (commission has one level)
            if agent.agent_id is not None:
                errors["agent"] = (f"{agent.username} is itself a sub-agent: at most one sub-agent level.")
            elif user.clients.filter(role=Role.AGENT).exists():
                errors["agent"] = (f"{user.username} has sub-agents, so it cannot become a sub-agent "
                                   "(at most one sub-agent level).")
        if role != Role.AGENT and user.role == Role.AGENT and user.clients.exists():
            errors["role"] = f"{user.username} still has {user.clients.count()} client(s); reassign them first."
        if user.pk == request_user.pk:
            if role != Role.ADMIN and not user.is_superuser:
                errors["role"] = "You cannot remove your own admin role."
            if attrs.get("is_active") is False:
                errors["is_active"] = "You cannot deactivate yourself."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ClientSerializer(serializers.ModelSerializer[User]):
    """A client in an agent's list: the minimum."""

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_active", "date_joined"]
        read_only_fields = fields


class ReferralCodeSerializer(serializers.Serializer[Any]):
    """An agent's referral code."""

    referral_code = serializers.CharField(read_only=True)
