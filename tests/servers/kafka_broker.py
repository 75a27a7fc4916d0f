"""Fixtures for a private kafka_broker (filled in by its backend work)."""
