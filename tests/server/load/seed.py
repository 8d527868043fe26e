"""Migrate the load test's SQLite database and create users; print ``[{"id", "token"}, …]`` as JSON.

Run as ``python -m tests.server.load.seed N`` with ``DJANGO_SETTINGS_MODULE=tests.server.load.daphne_settings``.
"""

from __future__ import annotations

import json
import sys

import django


def main(count: int) -> None:
    """Create ``count`` users (each with one notification) and print their ids and access tokens."""
    django.setup()
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from gridfleet.server.realtime.models import Notification
    from gridfleet.server.users.models import User

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.bulk_create([User(username=f"load{i}", email=f"load{i}@example.com", password="!")
                              for i in range(count)])
    users = list(User.objects.filter(username__startswith="load").order_by("id"))
    Notification.objects.bulk_create([Notification(user=u, kind="risk_alert", title="seed") for u in users])
    print(json.dumps([{"id": u.pk, "token": str(AccessToken.for_user(u))} for u in users]))


if __name__ == "__main__":
    main(int(sys.argv[1]))
