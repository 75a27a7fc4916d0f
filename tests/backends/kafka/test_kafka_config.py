"""Pure parts of the Kafka backend: settings, error wording, the partition-by key."""

from __future__ import annotations

from streamkit.backends.kafka.config import base_config, config_error
from streamkit.backends.kafka.producer import json_field_key
from streamkit.uri import parse_stream_uri


def test_base_config_joins_nodes_and_applies_settings_last() -> None:
    uri = parse_stream_uri("kafka://a:9092,b:9093/t")
    config = base_config(uri, {"linger.ms": "50", "bootstrap.servers": "c:1"})
    assert config["bootstrap.servers"] == "c:1"
    assert config["linger.ms"] == "50"
    assert base_config(uri, {})["bootstrap.servers"] == "a:9092,b:9093"


def test_credentials_become_sasl_plain() -> None:
    config = base_config(parse_stream_uri("kafka://ann:s3cret@a:9092/t"), {})
    assert config["sasl.username"] == "ann"
    assert config["sasl.password"] == "s3cret"
    assert config["sasl.mechanism"] == "PLAIN"
    assert config["security.protocol"] == "SASL_PLAINTEXT"


def test_config_error_names_the_setting_the_user_gave() -> None:
    error = config_error('No such configuration property: "fetch.nope"', {"fetch.nope": "3"})
    assert error.where == "-X fetch.nope=3"
    assert "fetch.nope" in str(error) and error.exit_code == 2
    # librdkafka names the canonical property; the user may have used its alias.
    alias = config_error(
        'Invalid value for configuration property "queue.buffering.max.ms"', {"linger.ms": "x"}
    )
    assert alias.where == "-X linger.ms=x"


def test_json_field_key() -> None:
    assert json_field_key(b'{"user": "ann", "n": 1}', "user") == b"ann"
    assert json_field_key(b'{"user": 7}', "user") == b"7"
    assert json_field_key(b'{"user": {"b": 1, "a": 2}}', "user") == b'{"a":2,"b":1}'
    assert json_field_key(b'{"other": 1}', "user") is None
    assert json_field_key(b"[1, 2]", "user") is None
    assert json_field_key(b"not json", "user") is None


def test_settings_of_other_backends_are_left_to_them() -> None:
    uri = parse_stream_uri("kafka://a:9092/t")
    config = base_config(uri, {"redis.db": "1", "kafka.linger.ms": "7", "acks": "all"})
    assert "redis.db" not in config and "db" not in config
    assert config["linger.ms"] == "7" and config["acks"] == "all"
    error = config_error('No such configuration property: "lingr.ms"', {"kafka.lingr.ms": "1"})
    assert error.where == "-X kafka.lingr.ms=1"


def test_clients_reconnect_after_a_short_first_backoff_unless_told_otherwise() -> None:
    uri = parse_stream_uri("kafka://a:9092/t")
    assert base_config(uri, {})["reconnect.backoff.ms"] == 10
    assert base_config(uri, {"reconnect.backoff.ms": "100"})["reconnect.backoff.ms"] == "100"
