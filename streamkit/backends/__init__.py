"""Backends: one module per URI scheme behind the small protocol in ``streamkit.backends.base``."""
