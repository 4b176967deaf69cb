"""diffsvc: shadow-diff comparison service."""

__version__ = "0.1.0"
