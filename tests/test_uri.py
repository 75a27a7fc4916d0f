"""Stream URIs: every row of spec/uri.md, the applicable rows of the reference's §2.3, and
every error."""

from __future__ import annotations

import pytest

from streamkit.errors import UsageError
from streamkit.uri import SCHEMES, Node, StreamUri, parse_stream_uri, parse_streamer_uri

# uri.md's table: (uri, scheme, location, nodes, keys)
URI_TABLE = [
    ("stdio:///", "stdio", "", (), ()),
    ("stdio:///a,b", "stdio", "", (), ("a", "b")),
    ("file://./data/ticks.ss/tick", "file", "./data/ticks.ss", (), ("tick",)),
    ("file:///var/log/x.ss/", "file", "/var/log/x.ss", (), ()),
    (
        "redis://127.0.0.1:6379/orders",
        "redis",
        "127.0.0.1:6379",
        (Node("127.0.0.1", 6379),),
        ("orders",),
    ),
    ("redis://localhost/a,b", "redis", "localhost", (Node("localhost", 6379),), ("a", "b")),
    ("rediss://user:pw@host:6380/a", "rediss", "host:6380", (Node("host", 6380),), ("a",)),
    (
        "kafka://node-a:9092,node-b:9092/a,b",
        "kafka",
        "node-a:9092,node-b:9092",
        (Node("node-a", 9092), Node("node-b", 9092)),
        ("a", "b"),
    ),
    ("memory://name/a", "memory", "name", (), ("a",)),
]


@pytest.mark.parametrize(("text", "scheme", "location", "nodes", "keys"), URI_TABLE)
def test_uri_table(
    text: str, scheme: str, location: str, nodes: tuple[Node, ...], keys: tuple[str, ...]
) -> None:
    uri = parse_stream_uri(text)
    assert uri.scheme == scheme
    assert uri.location == location
    assert uri.nodes == nodes
    assert uri.keys == keys


def test_rediss_is_tls_and_keeps_credentials_for_the_backend() -> None:
    uri = parse_stream_uri("rediss://user:pw@host:6380/a")
    assert uri.tls and not parse_stream_uri("redis://host/a").tls
    assert (uri.username, uri.password) == ("user", "pw")
    assert uri.redacted() == "rediss://user:***@host:6380/a"
    assert "pw" not in str(uri) and "pw" not in repr(uri)


def test_percent_encoded_credentials_are_decoded() -> None:
    uri = parse_stream_uri("redis://us%40er:p%2Fw@host/a")
    assert (uri.username, uri.password) == ("us@er", "p/w")


# Reference §2.3 rows that apply to streamkit: (uri, parser, expected nodes/path, keys)
def test_reference_stream_url_rows() -> None:
    assert parse_stream_uri("stdio:///clock").keys == ("clock",)
    assert parse_stream_uri("redis://localhost/").keys == ()
    assert parse_stream_uri("redis://localhost/").nodes == (Node("localhost", 6379),)
    clock = parse_stream_uri("redis://localhost:6379/clock")
    assert (clock.nodes, clock.keys) == ((Node("localhost", 6379),), ("clock",))
    assert parse_stream_uri("redis://localhost/a,,b").keys == ("a", "b")
    user = parse_stream_uri("redis://user:pw@host/s")
    assert (user.nodes, user.keys) == ((Node("host", 6379),), ("s",))
    assert parse_stream_uri("rediss://host:6380/s").tls
    two = parse_stream_uri("kafka://node-a:1234,node-b:1234/a,b")
    assert two.nodes == (Node("node-a", 1234), Node("node-b", 1234))
    assert ",".join(str(n) for n in two.nodes) == "node-a:1234,node-b:1234"
    assert parse_stream_uri("kafka://a:1,,b:2/x").nodes == (Node("a", 1), Node("b", 2))
    hi = parse_stream_uri("file://./path/to/hi/a,b")
    assert (hi.path, hi.keys) == ("./path/to/hi", ("a", "b"))
    assert parse_stream_uri("file://./path/to/hi/").path == "./path/to/hi"
    assert parse_stream_uri("file://./path/to/hi/").keys == ()
    data = parse_stream_uri("file:///data/x.ss/clock")
    assert (data.path, data.keys) == ("/data/x.ss", ("clock",))
    # Documented deviations: file paths keep their case and spaces.
    assert parse_stream_uri("file://clock.ss/clock").path == "clock.ss"
    assert parse_stream_uri("file://Clock.SS/x").path == "Clock.SS"
    assert parse_stream_uri("file:///data/my file.ss/s").path == "/data/my file.ss"
    assert parse_stream_uri("file:///data/my%20file.ss/s").path == "/data/my file.ss"


def test_reference_streamer_uri_rows() -> None:
    stdio = parse_streamer_uri("stdio://")
    assert (stdio.scheme, stdio.keys) == ("stdio", ())
    assert parse_streamer_uri("redis://localhost").nodes == (Node("localhost", 6379),)
    assert parse_streamer_uri("kafka://localhost:9092").nodes == (Node("localhost", 9092),)
    assert parse_streamer_uri("file:///path/to/hi").path == "/path/to/hi"
    assert parse_streamer_uri("file:///path/to/hi/").path == "/path/to/hi"
    # A streamer URI may also carry a key list.
    assert parse_streamer_uri("redis://localhost/a").keys == ("a",)
    assert parse_streamer_uri("redis://localhost").redacted() == "redis://localhost"


def test_default_nodes_and_ports() -> None:
    assert parse_stream_uri("redis:///a").nodes == (Node("127.0.0.1", 6379),)
    assert parse_stream_uri("kafka:///a").nodes == (Node("127.0.0.1", 9092),)
    assert parse_stream_uri("kafka://broker/a").nodes == (Node("broker", 9092),)
    assert parse_stream_uri("memory:///a").location == "default"
    assert parse_stream_uri("redis://[::1]:7000/a").nodes == (Node("::1", 7000),)
    assert str(Node("::1", 7000)) == "[::1]:7000"


def test_scheme_is_case_insensitive_and_keys_are_trimmed() -> None:
    uri = parse_stream_uri("REDIS://h/ a , b ")
    assert (uri.scheme, uri.keys) == ("redis", ("a", "b"))


def test_single_key_for_an_output() -> None:
    assert parse_stream_uri("stdio:///").key is None
    assert parse_stream_uri("stdio:///a").key == "a"
    with pytest.raises(UsageError) as caught:
        _ = parse_stream_uri("redis://user:secret@h/a,b").key
    message = str(caught.value)
    assert "2 streams" in message and "a,b" in message
    assert "secret" not in message and "user:***@" in message


def usage_error(text: str, parse: object = parse_stream_uri) -> str:
    with pytest.raises(UsageError) as caught:
        parse(text)  # type: ignore[operator]
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.mark.parametrize("text", ["localhost/a", "ticks.ss", "redis:/host/a", ""])
def test_no_scheme_separator(text: str) -> None:
    message = usage_error(text)
    assert "no '://'" in message
    assert all(scheme in message for scheme in SCHEMES)


def test_a_path_without_scheme_gets_the_file_form_suggested() -> None:
    assert "file://./data/t.ss/KEY" in usage_error("./data/t.ss")


@pytest.mark.parametrize(
    ("text", "corrected"),
    [
        ("kafka://host:9092", "kafka://host:9092/STREAM"),
        ("redis://localhost", "redis://localhost/STREAM"),
        ("stdio://", "stdio:///STREAM"),
        ("memory://name", "memory://name/STREAM"),
    ],
)
def test_missing_final_slash_shows_the_corrected_form(text: str, corrected: str) -> None:
    message = usage_error(text)
    assert "final '/'" in message
    assert corrected in message


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("stdio:///a?", "'?'"),
        ("redis://localhost:1234/stream?", "'?'"),
        ("redis://localhost/a b", "' '"),
        ("kafka://h:1/ok,no:pe", "':'"),
        ("memory://m/é", "'é'"),
    ],
)
def test_bad_key_names_the_bad_character(text: str, bad: str) -> None:
    message = usage_error(text)
    assert f"invalid character {bad}" in message
    assert "A-Z a-z 0-9 . _ -" in message


def test_too_long_key() -> None:
    assert "250 characters" in usage_error("stdio:///" + "k" * 250)
    assert parse_stream_uri("stdio:///" + "k" * 249).keys == ("k" * 249,)


@pytest.mark.parametrize(
    "text", ["foo://x/", "proto://sea-ql.org:1234", "http://h/a", "iggy://h/a"]
)
def test_unknown_scheme_lists_the_known_ones(text: str) -> None:
    message = usage_error(text)
    assert "unknown scheme" in message
    assert "known schemes: " + ", ".join(SCHEMES) in message


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("redis://h:99999/a", "invalid port '99999'"),
        ("redis://h:0/a", "invalid port '0'"),
        ("kafka://h:x/a", "invalid port 'x'"),
        ("redis://:6379/a", "empty host"),
        ("file:///a", "no file path"),
        ("redis://localhost/a/b", "invalid node 'localhost/a'"),
    ],
)
def test_bad_nodes_and_paths(text: str, what: str) -> None:
    assert what in usage_error(text)


SECRET_URIS = [
    "redis://user:s3cr3t@host",  # missing final slash
    "redis://user:s3cr3t@host/a?",  # bad key
    "redis://user:s3cr3t@host:99999/a",  # bad port
    "rediss://user:s3cr3t@:1/a",  # empty host
    "foo://user:s3cr3t@host/a",  # unknown scheme
    "user:s3cr3t@host/a",  # no scheme at all
    "redis://user:s3cr3t@host/a/b",  # path in the node list
]


@pytest.mark.parametrize("text", SECRET_URIS)
def test_credentials_are_never_printed_in_errors(text: str) -> None:
    message = usage_error(text)
    assert "s3cr3t" not in message
    assert "user:***@" in message


def test_credentials_are_not_in_repr_or_str() -> None:
    uri = parse_stream_uri("redis://user:s3cr3t@h1:1,h2:2/a")
    for shown in (str(uri), repr(uri), uri.redacted(), repr(uri.with_keys(("b",)))):
        assert "s3cr3t" not in shown
    assert uri.redacted() == "redis://user:***@h1:1,h2:2/a"
    assert uri.password == "s3cr3t"
    assert uri.with_keys(("b",)).password == "s3cr3t"


def test_with_keys_and_redacted_round_trip() -> None:
    uri = parse_stream_uri("kafka://a:1,b:2/x")
    moved = uri.with_keys(("y", "z"))
    assert isinstance(moved, StreamUri)
    assert parse_stream_uri(moved.redacted()) == moved
    assert moved.redacted() == "kafka://a:1,b:2/y,z"
