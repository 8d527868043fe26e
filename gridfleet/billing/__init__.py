"""Pure billing math: profit-share fees with a high-water mark (no Django)."""
