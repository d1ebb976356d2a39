"""ouie: privacy-by-design acoustic event detection for city streets."""

__version__ = "0.1.0"
