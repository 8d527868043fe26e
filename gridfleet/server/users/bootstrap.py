"""The first admin: created by ``gridfleet serve`` when the database has none."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from gridfleet.server.users.models import Role, User

DEFAULT_ADMIN_USERNAME = "admin"


def ensure_admin(username: str | None, password: str | None) -> tuple[User | None, str]:
    """Create the first admin when there is no admin yet.

    ``username`` and ``password`` default to ``GRIDFLEET_ADMIN_USERNAME`` / ``GRIDFLEET_ADMIN_PASSWORD`` and then to
    ``admin`` / a generated password. Returns ``(user, generated_password)``: the new admin and the password to
    print once (``""`` when the password was given, so a configured password is never echoed), or
    ``(None, "")`` when an admin already exists (nothing is changed).

    Raises :class:`ValueError` when a given password fails the password validators, or when the username
    belongs to an existing non-admin user (nobody is silently promoted).
    """
    if User.objects.filter(Q(role=Role.ADMIN) | Q(is_superuser=True)).exists():
        return None, ""
    username = (username or os.environ.get("GRIDFLEET_ADMIN_USERNAME") or DEFAULT_ADMIN_USERNAME).strip()
    password = password or os.environ.get("GRIDFLEET_ADMIN_PASSWORD") or None
    generated = ""
    if password is None:
        generated = password = secrets.token_urlsafe(18)
    else:
        try:
            password_validation.validate_password(password, User(username=username))
        except ValidationError as exc:
            raise ValueError("admin password rejected: " + " ".join(exc.messages)) from exc
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} exists and is not an admin; choose another admin username")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username, password=password, role=Role.ADMIN, is_staff=True,
                                            is_superuser=True)
    except IntegrityError:  # another process created it at the same moment
        return None, ""
    return user, generated
