"""App config."""

from django.apps import AppConfig


class Config(AppConfig):
    """The realtime app: ``/ws/`` events, notifications and alerts."""

    name = "gridfleet.server.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Give Redis channel-layer connections a socket timeout above channels_redis' 5 s blocking pop."""
        from django.conf import settings

        from gridfleet.server.realtime.layers import normalize_layers

        layers = getattr(settings, "CHANNEL_LAYERS", None)
        if layers:
            settings.CHANNEL_LAYERS = normalize_layers(layers)
