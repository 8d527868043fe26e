"""Who may see and change what: the scoping rules every endpoint applies.

* an admin sees and changes everything;
* an agent sees its own objects and, read-only, those of its clients (users whose ``agent`` is this agent);
* a user sees and changes only its own objects.

Endpoints return 404 (not 403) for objects outside the caller's scope, so nothing leaks about their existence.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from gridfleet.server.users.models import Role, User


def scope_queryset(queryset: QuerySet[Any], user: User, owner_field: str = "owner") -> QuerySet[Any]:
    """Return the part of ``queryset`` that ``user`` may see (``owner_field`` is the path to the owning user)."""
    if not user.is_authenticated:
        return queryset.none()
    if user.is_admin_role:
        return queryset
    if user.role == Role.AGENT:
        return queryset.filter(Q(**{owner_field: user}) | Q(**{f"{owner_field}__agent": user}))
    return queryset.filter(**{owner_field: user})


def can_modify(user: User, owner: User) -> bool:
    """Return True when ``user`` may change an object owned by ``owner`` (agents only read their clients')."""
    return bool(user.is_authenticated and (user.is_admin_role or owner.pk == user.pk))


class OwnerWritePermission(BasePermission):
    """Object permission: reads follow :func:`scope_queryset`; writes need ownership (or admin)."""

    owner_field = "owner"

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """Allow safe methods (the queryset is already scoped); others only for the owner or an admin."""
        if request.method in SAFE_METHODS:
            return True
        owner = obj
        for part in getattr(view, "owner_field", self.owner_field).split("__"):
            owner = getattr(owner, part)
        return can_modify(request.user, owner)  # type: ignore[arg-type]


class IsAdminRole(BasePermission):
    """Only admins."""

    def has_permission(self, request: Request, view: Any) -> bool:
        """Return True for admins."""
        user = request.user
        return bool(user.is_authenticated and user.is_admin_role)  # type: ignore[union-attr]


class IsAgentOrAdmin(BasePermission):
    """Only agents and admins."""

    def has_permission(self, request: Request, view: Any) -> bool:
        """Return True for agents and admins."""
        user = request.user
        return bool(user.is_authenticated and (user.is_admin_role or user.role == Role.AGENT))  # type: ignore[union-attr]
