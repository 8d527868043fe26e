"""Built-in strategies; importing this package registers them."""

from gridfleet.engine.strategies.grid import GridStrategy

__all__ = ["GridStrategy"]
