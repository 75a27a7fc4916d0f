"""Fixtures for a private redis_server (filled in by its backend work)."""
