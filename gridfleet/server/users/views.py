"""Authentication, one's own account, user administration and agents' endpoints (all under ``/api/v1/``)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import django_filters
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from gridfleet.server.users import refresh_cookie
from gridfleet.server.users.models import Role, User
from gridfleet.server.users.permissions import IsAdminRole, IsAgentOrAdmin
from gridfleet.server.users.serializers import (
    ClientSerializer,
    DetailSerializer,
    LogoutSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    ReferralCodeSerializer,
    RegisterSerializer,
    UserSerializer,
    check_password_rules,
)
from gridfleet.server.users.throttles import (
    LoginRateThrottle,
    PasswordResetConfirmRateThrottle,
    PasswordResetRateThrottle,
    RegisterRateThrottle,
)

logger = logging.getLogger(__name__)
AUTH = ["auth"]
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
REFERRAL_LENGTH = 10


def _detail(message: str, code: int = status.HTTP_200_OK) -> Response:
    return Response({"detail": message}, status=code)


def revoke_refresh_tokens(user: User) -> int:
    """Blacklist every outstanding refresh token of ``user`` (after a password change/reset); return how many."""
    count = 0
    for token in OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False):
        BlacklistedToken.objects.get_or_create(token=token)
        count += 1
    return count


class IsAgent(BasePermission):
    """Only agents."""

    message = "Only agents have clients and referral codes."

    def has_permission(self, request: Request, view: Any) -> bool:
        """Return True for agents."""
        user = request.user
        return bool(user.is_authenticated and user.role == Role.AGENT)  # type: ignore[union-attr]


@extend_schema(tags=AUTH, summary="Create an account",
               responses={201: RegisterSerializer, 400: OpenApiResponse(description="field errors")})
class RegisterView(generics.CreateAPIView):  # type: ignore[type-arg]
    """Sign up as a plain user; a valid agent referral code makes the new user that agent's client."""

    serializer_class = RegisterSerializer
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [RegisterRateThrottle]


@extend_schema(tags=AUTH, summary="Log in: a JWT access and refresh token pair (throttled per IP and username)")
class LoginView(TokenObtainPairView):
    """Exchange username and password for tokens (browser mode: the refresh token goes into an HttpOnly cookie)."""

    throttle_classes = [LoginRateThrottle]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Log in; in browser mode move the refresh token from the body into the cookie."""
        return refresh_cookie.move_to_cookie(request, super().post(request, *args, **kwargs))


@extend_schema(tags=AUTH, summary="A new access token (and a rotated refresh token; the old one is blacklisted)")
class RefreshView(TokenRefreshView):
    """Refresh the tokens; in browser mode the refresh token is read from and rotated into the cookie."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Refresh from the body, or from the cookie in browser mode."""
        refresh_cookie.fill_from_cookie(request)
        return refresh_cookie.move_to_cookie(request, super().post(request, *args, **kwargs))


@extend_schema(tags=AUTH, summary="Log out: blacklist a refresh token", request=LogoutSerializer,
               responses={200: DetailSerializer, 400: OpenApiResponse(description="invalid or revoked token")})
class LogoutView(APIView):
    """Revoke a refresh token (holding it is the proof; the access token simply expires)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        """Blacklist the given refresh token (or, in browser mode, the cookie's) and clear the cookie."""
        refresh_cookie.fill_from_cookie(request)
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            RefreshToken(serializer.validated_data["refresh"]).blacklist()
        except TokenError as exc:
            response = Response({"refresh": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        else:
            response = _detail("Logged out.")
        if refresh_cookie.browser_mode(request):
            refresh_cookie.clear(response)
        return response


@extend_schema_view(
    get=extend_schema(tags=AUTH, summary="Your account"),
    patch=extend_schema(tags=AUTH, summary="Change your e-mail or alert webhook"),
    put=extend_schema(tags=AUTH, summary="Replace your e-mail and alert webhook"),
)
class MeView(generics.RetrieveUpdateAPIView):  # type: ignore[type-arg]
    """The caller's own account."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]

    def get_object(self) -> User:
        """Return the caller."""
        return self.request.user  # type: ignore[return-value]


@extend_schema(tags=AUTH, summary="Change your password (logs out your other sessions)",
               request=PasswordChangeSerializer,
               responses={200: DetailSerializer, 400: OpenApiResponse(description="field errors")})
class PasswordChangeView(APIView):
    """Change the caller's password; every refresh token issued before is revoked."""

    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        """Check the old password, validate and set the new one."""
        serializer = PasswordChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user: User = request.user  # type: ignore[assignment]
        user.set_password(serializer.validated_data["new_password"])
        user.save(update_fields=["password"])
        revoke_refresh_tokens(user)
        return _detail("Password changed.")


def _reset_message(user: User, uid: str, token: str) -> str:
    base = getattr(settings, "GRIDFLEET_PUBLIC_URL", "").rstrip("/")
    link = f"{base}/reset-password?uid={uid}&token={token}"
    return (f"Hello {user.username},\n\nSomeone (hopefully you) asked to reset your gridfleet password.\n"
            f"Open {link}\nor POST to /api/v1/auth/password/reset/confirm/ with\n  uid: {uid}\n  token: {token}\n"
            "and your new password. If you did not ask for this, ignore this message.\n")


@extend_schema(tags=AUTH, summary="Ask for a password-reset e-mail (always 200: nothing leaks about accounts)",
               request=PasswordResetSerializer, responses={200: DetailSerializer})
class PasswordResetView(APIView):
    """E-mail a reset token to the active accounts with that address."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [PasswordResetRateThrottle]

    def post(self, request: Request) -> Response:
        """Send the e-mail when the address belongs to an active account."""
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"]
        for user in User.objects.filter(email__iexact=email, is_active=True):
            if not user.has_usable_password():
                continue
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = default_token_generator.make_token(user)
            try:
                send_mail("gridfleet password reset", _reset_message(user, uid, token), None, [user.email])
            except Exception:  # the answer must not depend on the mail server (nothing may leak)
                logger.exception("password reset e-mail to user %s could not be sent", user.pk)
        return _detail("If an account uses this address, a reset e-mail is on its way.")


@extend_schema(tags=AUTH, summary="Set a new password with the token from the reset e-mail",
               request=PasswordResetConfirmSerializer,
               responses={200: DetailSerializer, 400: OpenApiResponse(description="invalid token or password")})
class PasswordResetConfirmView(APIView):
    """Check uid and token (single use: they depend on the password hash), then set the new password."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [PasswordResetConfirmRateThrottle]

    def post(self, request: Request) -> Response:
        """Reset the password."""
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user: User | None
        try:
            user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(data["uid"]))), is_active=True)
        except (ValueError, TypeError, OverflowError, User.DoesNotExist):
            user = None
        if user is None or not default_token_generator.check_token(user, data["token"]):
            return Response({"token": ["Invalid or expired reset link."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            check_password_rules(data["new_password"], user)
        except ValidationError as exc:
            return Response({"new_password": exc.detail}, status=status.HTTP_400_BAD_REQUEST)
        user.set_password(data["new_password"])
        user.save(update_fields=["password"])
        revoke_refresh_tokens(user)
        return _detail("Password reset.")


class UserFilter(django_filters.FilterSet):
    """Filters ``role``, ``agent`` (a plain number: an unknown id reveals nothing) and ``is_active``."""

    role = django_filters.ChoiceFilter(choices=Role.choices)
    agent = django_filters.NumberFilter(field_name="agent_id", help_text="agent id")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = User
        fields = ["role", "agent", "is_active"]


@extend_schema_view(
    list=extend_schema(tags=["users"], summary="Users (admin: all; agent: its clients)"),
    retrieve=extend_schema(tags=["users"], summary="One user (admin: any; agent: its clients, read-only)"),
    partial_update=extend_schema(tags=["users"], summary="Admin: set role, agent, active flag"),
    update=extend_schema(tags=["users"], summary="Admin: set role, agent, active flag"),
)
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                  viewsets.GenericViewSet):  # type: ignore[type-arg]
    """User administration: admins see and change every user; agents read their clients; users get 403."""

    serializer_class = UserSerializer
    queryset = User.objects.select_related("agent").order_by("id")
    filter_backends = [DjangoFilterBackend, SearchFilter, OrderingFilter]
    filterset_class = UserFilter
    search_fields = ["username", "email"]
    ordering_fields = ["id", "username", "date_joined", "last_login"]

    def get_permissions(self) -> list[BasePermission]:
        """Reads for agents and admins; changes for admins only."""
        if self.action in ("update", "partial_update"):
            return [IsAgentOrAdmin(), _AdminWrites()]
        return [IsAgentOrAdmin()]

    def get_queryset(self) -> QuerySet[User]:
        """Admins: everyone; agents: their clients (anything else is a 404)."""
        user: User = self.request.user  # type: ignore[assignment]
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False) or not user.is_authenticated:
            return queryset.none()
        if user.is_admin_role:
            return queryset
        return queryset.filter(agent=user)


class _AdminWrites(IsAdminRole):
    """Object check after the scoped lookup: an agent's own client exists for it (so 403, not 404)."""

    message = "Agents have read-only access to their clients."

    def has_permission(self, request: Request, view: Any) -> bool:
        """Let the lookup run first (404 outside the caller's scope)."""
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """Only admins change users."""
        return IsAdminRole.has_permission(self, request, view)


def new_referral_code() -> str:
    """Return a random referral code (10 characters, unambiguous alphabet)."""
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


@extend_schema(tags=["agents"], summary="Agent: create or rotate your referral code (the old one stops working)",
               request=None, responses={200: ReferralCodeSerializer})
class ReferralCodeView(APIView):
    """Give the calling agent a new referral code."""

    permission_classes = [IsAgent]

    def post(self, request: Request) -> Response:
        """Create or rotate the code."""
        user: User = request.user  # type: ignore[assignment]
        for _ in range(10):
            code = new_referral_code()
            try:
                with transaction.atomic():
                    User.objects.filter(pk=user.pk).update(referral_code=code)
            except IntegrityError:
                continue
            return Response({"referral_code": code})
        return _detail("Could not create a unique code; try again.", status.HTTP_503_SERVICE_UNAVAILABLE)


@extend_schema(tags=["agents"], summary="Agent: your clients (minimal list)")
class AgentClientsView(generics.ListAPIView):  # type: ignore[type-arg]
    """The calling agent's clients."""

    serializer_class = ClientSerializer
    permission_classes = [IsAgent]
    filterset_fields = ["is_active"]
    ordering_fields = ["id", "username", "date_joined"]

    def get_queryset(self) -> QuerySet[User]:
        """The caller's clients."""
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        return User.objects.filter(agent=self.request.user).order_by("id")

