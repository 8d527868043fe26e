"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The billing ledger: double-entry accounts and transactions, deposits, vouchers and payouts."""

    name = "gridfleet.server.billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"
