"""The version of sessionkit, in a module of its own so that any module can import it without
importing the package root (and what the package root imports)."""

__version__ = "0.1.0"
