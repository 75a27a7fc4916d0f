"""Suite-wide fixtures. Server fixtures live in tests/servers/ and are registered here."""

pytest_plugins = ["tests.servers.redis_server", "tests.servers.kafka_broker"]
