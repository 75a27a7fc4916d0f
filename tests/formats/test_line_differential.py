"""The compiled line codec against the pure one: same messages, bytes and errors, always.

Inputs are random mixtures of the lines the fast C loop takes (canonical four-field lines,
SeaStreamer's three-field lines, plain lines) and of near misses that must fall back to the
general parser (bad calendar times, numbers past 64 bits, leading zeros, odd spacing, invalid
UTF-8, ``\\r``, empty lines, random bytes), fed in random chunks under every ``--on-invalid``
policy. The relay's transcoding path is checked against decode → route → encode of the pure codec.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import DataError, LineFormatError
from streamkit.formats import line as pure
from streamkit.formats import line_compiled as compiled
from streamkit.formats.spans import SPAN_SIZE, Spans
from streamkit.message import BROADCAST, MAX_U64, Message, ReadTime

NOW = 1_795_417_200_123


def clock() -> int:
    return NOW


SECONDS = st.sampled_from(
    [
        b"2026-11-23T07:00:00",
        b"2024-02-29T23:59:59",
        b"0001-01-01T00:00:00",
        b"9999-12-31T23:59:59",
        b"2023-02-29T00:00:00",  # not a day
        b"2026-13-01T00:00:00",
        b"2026-11-23T24:00:00",
        b"2026-11-23T07:60:00",
        b"2026-11-23T07:00:60",
        b"0000-01-01T00:00:00",
        b"2026-11-23 07:00:00",
        b"2026-1x-23T07:00:00",
    ]
)
FRACTIONS = st.sampled_from(
    [b"", b".1", b".12", b".123", b".000", b".123456789", b".1234567890", b"."]
)
KEYS = st.sampled_from(
    [b"tick", b"a", b"k.1", b"A_b-c", b"broadcast", b"x" * 249, b"x" * 250, b"b@d", b""]
)
NUMBERS = st.sampled_from(
    [
        b"0",
        b"1",
        b"7",
        b"42",
        b"007",
        b"+5",
        b"-1",
        str(MAX_U64).encode(),
        str(MAX_U64 + 1).encode(),
        b"9" * 19,  # the most digits the C parser reads without an overflow check
        b"9" * 20,
        b"1" * 21,
        b"x",
    ]
)
PAYLOADS = st.sampled_from(
    [
        b"hello",
        b'{"tick": 1}',
        b" lead",
        b"",
        b"\t",
        b"[nested] x",
        b"a | b",
        b"caf\xc3\xa9",
        b"\xff\xfe",
        b"\x7f",
        b"]",
    ]
)
SEPARATORS = st.sampled_from([b" | ", b"|", b" |  ", b" | "])


@st.composite
def meta_lines(draw: Any) -> bytes:
    fields = draw(st.sampled_from([1, 2, 3, 4, 5]))
    sep = draw(SEPARATORS)
    parts = [
        draw(SECONDS) + draw(FRACTIONS),
        draw(KEYS),
        draw(NUMBERS),
        draw(NUMBERS),
        draw(NUMBERS),
    ]
    closing = draw(st.sampled_from([b"] ", b"]", b"]  "]))
    return b"[" + sep.join(parts[:fields]) + closing + draw(PAYLOADS)


LINES = st.one_of(
    meta_lines(),
    meta_lines(),
    PAYLOADS,
    st.binary(max_size=40),
    st.sampled_from([b"[]", b"[", b"\r", b"x\r", b"[2026-11-23T07:00:00.123 | tick | 5 | 0] ok\r"]),
)


def error_facts(error: LineFormatError | None) -> Any:
    if error is None:
        return None
    return (type(error), str(error), error.line_number, error.part)


def message_facts(messages: list[Message]) -> list[Any]:
    """Each message and its output line (``Message.line``, when set, must be that line)."""
    facts = []
    for message in messages:
        try:
            text: Any = pure.encode_lines([message])
        except DataError as error:
            text = str(error)
        if message.line is not None:
            assert message.line + b"\n" == text
        facts.append((message, text))
    return facts


def run_decoder(cls: type[pure.LineDecoder], chunks: list[bytes], **options: Any) -> Any:
    warnings: list[str] = []
    decoder = cls("in.log", clock=clock, warn=warnings.append, **options)
    messages: list[Message] = []
    flags: list[bool] = []
    raised = None
    try:
        for chunk in chunks:
            messages += decoder.feed(chunk)
            flags += decoder.broadcast
        messages += decoder.finish()
        flags += decoder.broadcast
    except LineFormatError as error:
        raised = error
    return (
        message_facts(messages),
        flags,
        error_facts(decoder.error),
        error_facts(raised),
        decoder.skipped,
        warnings,
        decoder.line_number,
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=600, deadline=None)
@given(
    st.lists(LINES, max_size=30),
    st.sampled_from([b"\n", b"\r\n"]),
    st.lists(st.integers(0, 4000), max_size=4),
    st.sampled_from(["fail", "skip", "raw"]),
    st.booleans(),
)
def test_decoders_agree(
    lines: list[bytes], end: bytes, cuts: list[int], policy: str, no_meta: bool
) -> None:
    data = end.join(lines) + end
    chunks = chunked(data, cuts)
    expected = run_decoder(pure.LineDecoder, chunks, on_invalid=policy, no_meta=no_meta)
    assert run_decoder(compiled.LineDecoder, chunks, on_invalid=policy, no_meta=no_meta) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8), st.sampled_from(["fail", "skip", "raw"]))
def test_random_bytes_agree(chunks: list[bytes], policy: str) -> None:
    expected = run_decoder(pure.LineDecoder, chunks, on_invalid=policy)
    assert run_decoder(compiled.LineDecoder, chunks, on_invalid=policy) == expected


def routed_pure(
    chunks: list[bytes],
    policy: str,
    keep: frozenset[str] | None,
    take: Callable[[Message], None],
    stamp: Callable[[], int] = clock,
) -> tuple[Any, dict[str, int]]:
    """The batch relay's reading with the pure codec: decode, ``take`` each message the
    consumer reads (its keys and broadcasts), until a message or line fails; returns that
    error's facts (None) and per key how many messages the key filter left out (the CLI's note
    at exit)."""
    decoder = pure.LineDecoder("in.log", clock=stamp, on_invalid=policy, warn=lambda _: None)
    left_out: dict[str, int] = {}
    try:
        for chunk in [*chunks, None]:
            messages = decoder.feed(chunk) if chunk is not None else decoder.finish()
            for message, broadcast in zip(messages, decoder.broadcast):
                if keep is None or broadcast or message.stream_key in keep:
                    take(message)
                else:
                    left_out[message.stream_key] = left_out.get(message.stream_key, 0) + 1
            if decoder.error is not None:
                raise decoder.error
    except DataError as error:
        return (type(error), str(error)), left_out
    return None, left_out


def driven(
    decoder: compiled.LineDecoder, chunks: list[bytes], feed: Callable[[bytes], None],
    finish: Callable[[], None],
) -> tuple[Any, dict[str, int]]:  # fmt: skip
    """A compiled decoder's relay entry ``feed`` for each chunk, then ``finish``, until an error
    (its facts, or None); and the key filter's counts."""
    try:
        for chunk in chunks:
            feed(chunk)
            if decoder.error is not None:
                raise decoder.error
        finish()
        if decoder.error is not None:
            raise decoder.error
    except DataError as error:
        return (type(error), str(error)), decoder.left_out or {}
    return None, decoder.left_out or {}


def relay_pure(
    chunks: list[bytes], policy: str, keep: frozenset[str] | None, out_key: str | None
) -> tuple[bytes, Any, dict[str, int]]:
    """What the batch relay writes: encoded message by message (a DataError stops the output
    at that message)."""
    out = bytearray()

    def take(message: Message) -> None:
        out.extend(pure.encode_lines([message], out_key))

    error, left_out = routed_pure(chunks, policy, keep, take)
    return bytes(out), error, left_out


def relay_compiled(
    chunks: list[bytes], policy: str, keep: frozenset[str] | None, out_key: str | None
) -> tuple[bytes, Any, dict[str, int]]:
    decoder = compiled.LineDecoder("in.log", clock=clock, on_invalid=policy, warn=lambda _: None)
    out = bytearray()
    error, left_out = driven(
        decoder,
        chunks,
        lambda chunk: decoder.feed_into(chunk, out, keep, out_key),
        lambda: decoder.finish_into(out, keep, out_key),
    )
    return bytes(out), error, left_out


RELAYED = (
    st.lists(LINES, max_size=30),
    st.lists(st.integers(0, 4000), max_size=3),
    st.sampled_from(["fail", "skip", "raw"]),
    st.sampled_from([None, frozenset({"tick"}), frozenset({"a", "k.1", "broadcast"})]),
)
"""A relay's input (lines, where the reads cut it), ``--on-invalid`` and the keys it reads."""


@settings(max_examples=500, deadline=None)
@given(*RELAYED, st.sampled_from([None, "tick", "renamed"]))
def test_transcoding_relay_writes_what_decode_route_encode_writes(
    lines: list[bytes],
    cuts: list[int],
    policy: str,
    keep: frozenset[str] | None,
    out_key: str | None,
) -> None:
    chunks = chunked(b"\n".join(lines) + b"\n", cuts)
    assert relay_compiled(chunks, policy, keep, out_key) == relay_pure(
        chunks, policy, keep, out_key
    )


def record(message: Message) -> tuple[bytes, int]:
    """What a Kafka producer takes of a message: its payload and time, -1 for a ``ReadTime``."""
    read = type(message.timestamp) is ReadTime
    return message.payload, -1 if read else message.timestamp


def records_pure(
    chunks: list[bytes], policy: str, keep: frozenset[str] | None
) -> tuple[list[tuple[bytes, int]], Any, dict[str, int]]:
    """What the batch loop gives a Kafka producer: the ``record`` of each message the consumer
    reads, until a line fails; and the key filter's counts."""
    out: list[tuple[bytes, int]] = []
    error, left_out = routed_pure(chunks, policy, keep, lambda m: out.append(record(m)), read_clock)
    return out, error, left_out


def records_spans(
    chunks: list[bytes], policy: str, keep: frozenset[str] | None
) -> tuple[list[tuple[bytes, int]], Any, dict[str, int]]:
    """The same from ``feed_spans``: Spans read back record by record, Messages as above."""
    decoder = compiled.LineDecoder(
        "in.log", clock=read_clock, on_invalid=policy, warn=lambda _: None
    )
    out: list[tuple[bytes, int]] = []

    def take(pieces: list[Spans | Message]) -> None:
        for piece in pieces:
            if isinstance(piece, Message):
                out.append(record(piece))
                continue
            for at in range(0, len(piece.spans), SPAN_SIZE):
                start, size, ts = struct.unpack_from("qqq", piece.spans, at)
                out.append((piece.chunk[start : start + size], ts))

    def feed(chunk: bytes) -> None:
        take(decoder.feed_spans(chunk, keep))

    error, left_out = driven(decoder, chunks, feed, lambda: take(decoder.finish_spans(keep)))
    if error is None:
        assert decoder.relayed == len(out)
    return out, error, left_out


def read_clock() -> int:
    return ReadTime(NOW)


@settings(max_examples=500, deadline=None)
@given(*RELAYED)
def test_spans_give_the_producer_what_the_batch_loop_gives_it(
    lines: list[bytes], cuts: list[int], policy: str, keep: frozenset[str] | None
) -> None:
    chunks = chunked(b"\n".join(lines) + b"\n", cuts)
    assert records_spans(chunks, policy, keep) == records_pure(chunks, policy, keep)


MESSAGES = st.builds(
    Message,
    st.sampled_from(["tick", "a", BROADCAST, "k.1"]),
    st.sampled_from([0, 1, 3, MAX_U64, MAX_U64 + 1, -1]),
    st.sampled_from([0, 5, MAX_U64, MAX_U64 + 1, -1]),
    st.sampled_from([0, 1_795_417_200_123, -1, -62_135_596_800_001, 253_402_300_800_000, 1 << 70]),
    st.one_of(PAYLOADS, st.binary(max_size=8)),
)


def encoded(encode: Any, messages: list[Message], key: str | None) -> Any:
    try:
        return encode(messages, key)
    except (DataError, ValueError, OverflowError, OSError) as error:
        return (type(error), str(error))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(MESSAGES, max_size=40),
    st.sampled_from([None, "tick", "renamed"]),
    st.lists(LINES, max_size=20),
)
def test_encoders_agree(messages: list[Message], key: str | None, lines: list[bytes]) -> None:
    decoder = pure.LineDecoder(clock=clock, on_invalid="skip")
    decoded = decoder.feed(b"\n".join(lines) + b"\n")  # some carry .line
    for batch in (messages, decoded, decoded + messages, messages + decoded):
        assert encoded(compiled.encode_lines, batch, key) == encoded(pure.encode_lines, batch, key)


@pytest.mark.parametrize(
    "line",
    [
        b"x" * 10_000_000,
        b"[2026-11-23T07:00:00.123 | tick | 5 | 0] " + b"y" * 10_000_000,
        b"[2026-11-23T07:00:00 | tick | 5] " + b"\xc3\xa9" * 5_000_000,
    ],
)
def test_a_10_mb_line_decodes_and_relays_alike(line: bytes) -> None:
    data = line + b"\nafter\n"
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    assert run_decoder(compiled.LineDecoder, chunks) == run_decoder(pure.LineDecoder, chunks)
    assert relay_compiled(chunks, "fail", None, "k") == relay_pure(chunks, "fail", None, "k")


def test_fresh_key_sets_one_after_another_filter_by_their_own_keys() -> None:
    # A set freed and another allocated at the same address must not inherit cached answers.
    data = b"".join(b"[2026-11-23T07:00:00.000 | k%d | %d | 0] x\n" % (n % 5, n) for n in range(50))
    for round_ in range(200):
        wanted = f"k{round_ % 5}"
        keep = frozenset({wanted})
        out, error, _ = relay_compiled([data], "fail", keep, None)
        assert error is None
        keys = {line.split(b" | ")[1].decode() for line in out.splitlines()}
        assert keys == {wanted}
        del keep


@pytest.mark.parametrize("cuts", [[], [1000, 1001, 5000], list(range(0, 60_000, 777))])
def test_left_out_counts_of_many_keys_agree(cuts: list[int]) -> None:
    """More keys left out than the C scan counts at once (it adds its counts to the dict when
    a table fills and when it returns): per key, the same counts as the batch relay."""
    data = (
        b"".join(
            b"[2026-11-23T07:00:00.000 | k%d | %d | %d] x\n" % (n * 7 % 40, n, n % 3)
            for n in range(1000)
        )
        + b"plain broadcast\n[2026-11-23T07:00:00 | k39 | 5] three fields\n"
    )
    keep = frozenset({"k0", "k5"})
    relayed = relay_compiled(chunked(data, cuts), "fail", keep, "out")
    assert relayed == relay_pure(chunked(data, cuts), "fail", keep, "out")
    assert len(relayed[2]) == 38 and sum(relayed[2].values()) == 1000 - 50 + 1
