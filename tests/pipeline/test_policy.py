"""Error policies: fail, skip, retry with backoff, dead-letter."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from streamkit.backends.base import ConsumerOptions, Producer
from streamkit.errors import HandlerError, UsageError
from streamkit.message import Message
from streamkit.pipeline import BatchSpec, ErrorPolicy, Pipeline, Stage, parse_policy
from tests.pipeline.streams import ListConsumer, ListProducer, make_messages


def fails_on_7(message: Message) -> bytes:
    if message.seq % 10 == 7:
        raise ValueError(f"bad row {message.seq}")
    return message.payload


def test_parse_policy() -> None:
    assert parse_policy("fail") == ErrorPolicy("fail")
    assert parse_policy("skip") == ErrorPolicy("skip")
    assert parse_policy("retry:3") == ErrorPolicy("fail", retries=3)
    assert parse_policy("dead-letter:file://./d.ss/dlq").dead_letter == "file://./d.ss/dlq"
    for bad in ("retry", "retry:x", "explode", "dead-letter:", "dead-letter:nowhere"):
        with pytest.raises(UsageError, match="--on-error"):
            parse_policy(bad)


def test_backoff_doubles_and_is_capped() -> None:
    policy = ErrorPolicy(retries=9, backoff=0.1, max_backoff=0.5)
    assert [policy.delay(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_fail_stops_names_the_message_and_commits_only_what_was_written() -> None:
    options = ConsumerOptions(mode="resumable", group="g")
    consumer = ListConsumer(make_messages(100), batch=5, options=options)
    producer = ListProducer()
    with pytest.raises(HandlerError) as caught:
        asyncio.run(Pipeline([Stage(fails_on_7, name="--func t:f")]).run(consumer, producer))
    text = str(caught.value)
    assert text.startswith("--func t:f: handler failed on message in:0:7 b'm7'")
    assert "ValueError: bad row 7" in text
    assert caught.value.exit_code == 1
    assert [m.seq for m in producer.sent] == list(range(7))  # everything before the bad one
    assert [m.seq for m in consumer.committed] == list(range(7))


def test_skip_counts_and_logs_and_goes_on() -> None:
    warnings: list[str] = []
    producer = ListProducer()
    pipeline = Pipeline([Stage(fails_on_7, workers=3, on_error=parse_policy("skip"))],
                        warn=warnings.append)  # fmt: skip
    snapshot = asyncio.run(pipeline.run(ListConsumer(make_messages(100), batch=9), producer))
    assert [m.seq for m in producer.sent] == [n for n in range(100) if n % 10 != 7]
    assert snapshot.skipped == 10
    assert len(warnings) == 10 and "skipped in:0:17 b'm17'" in " ".join(warnings)


def test_retry_recovers_transient_failures() -> None:
    attempts: Counter[int] = Counter()

    def flaky(message: Message) -> bytes:
        attempts[message.seq] += 1
        if message.seq % 4 == 0 and attempts[message.seq] <= 2:
            raise ConnectionError("try again")
        return message.payload

    policy = ErrorPolicy(retries=2, backoff=0.001)
    producer = ListProducer()
    snapshot = asyncio.run(
        Pipeline([Stage(flaky, workers=2, on_error=policy)]).run(
            ListConsumer(make_messages(40)), producer
        )
    )
    assert [m.seq for m in producer.sent] == list(range(40))
    assert snapshot.retried == 20
    assert attempts[0] == 3 and attempts[1] == 1


def test_retry_gives_up_after_n_and_fails() -> None:
    calls: Counter[int] = Counter()

    async def always(message: Message) -> bytes:
        calls[message.seq] += 1
        if message.seq == 3:
            raise RuntimeError("down")
        return message.payload

    policy = ErrorPolicy(retries=3, backoff=0.001)
    with pytest.raises(HandlerError, match="in:0:3"):
        asyncio.run(
            Pipeline([Stage(always, on_error=policy)]).run(
                ListConsumer(make_messages(10)), ListProducer()
            )
        )
    assert calls[3] == 4


def test_dead_letter_gets_message_and_error_as_json() -> None:
    dead = ListProducer()
    opened: list[str] = []

    async def open_producer(uri: str) -> Producer:
        opened.append(uri)
        return dead

    producer = ListProducer()
    policy = parse_policy("dead-letter:memory://t/dlq")
    pipeline = Pipeline([Stage(fails_on_7, workers=2, on_error=policy, name="enrich")],
                        open_producer=open_producer)  # fmt: skip
    snapshot = asyncio.run(pipeline.run(ListConsumer(make_messages(30), batch=4), producer))
    assert opened == ["memory://t/dlq"]
    assert [m.seq for m in producer.sent] == [n for n in range(30) if n % 10 != 7]
    letters = [json.loads(m.payload) for m in dead.sent]
    assert [letter["seq"] for letter in letters] == [7, 17, 27]
    assert letters[0] == {
        "error": "ValueError: bad row 7",
        "stage": "enrich",
        "stream": "in",
        "shard": 0,
        "seq": 7,
        "timestamp": make_messages(8)[7].timestamp,
        "payload": "m7",
    }
    assert [m.timestamp for m in dead.sent] == [make_messages(30)[n].timestamp for n in (7, 17, 27)]
    assert snapshot.dead_lettered == 3


def test_batch_failure_is_reported_for_the_batch() -> None:
    def insert(rows: list[Message]) -> None:
        if any(m.seq == 12 for m in rows):
            raise OSError("db down")

    stage = Stage(insert, batch=BatchSpec(size=5), name="db")
    with pytest.raises(HandlerError, match="a batch of 5 messages from in:0:10"):
        asyncio.run(Pipeline([stage]).run(ListConsumer(make_messages(40)), ListProducer()))


def test_unusable_return_value_is_a_handler_failure() -> None:
    with pytest.raises(HandlerError, match="handler returned int"):
        asyncio.run(
            Pipeline([Stage(lambda m: 42)]).run(ListConsumer(make_messages(3)), ListProducer())
        )


def _ticks(count: int) -> list[Message]:
    return [Message("ticks", 0, n, 1_700_000_000_000 + n, b'{"tick":%d}' % n) for n in range(count)]


FIRST_BAD = 50_037


def fails_from_first_bad(message: Message) -> bytes:
    """Fails on tick 50,037 and on every 100th tick after it (later failures are seen first by
    other workers when there are several)."""
    if message.seq == FIRST_BAD or (message.seq > FIRST_BAD and message.seq % 100 == 0):
        raise ValueError(f"bad tick {message.seq}")
    return message.payload


@pytest.mark.parametrize(
    ("workers", "ordered"),
    [(1, True), (8, True), (8, False)],
    ids=["1", "8-ordered", "8-unordered"],
)
def test_fail_writes_everything_before_the_first_failure_at_scale(
    workers: int, ordered: bool
) -> None:
    """Issue 15 #4: 100,000 messages, first failure at 50,037: exactly the 50,037 outputs before
    it are written (in input order when ordered) and committed, and the error names 50,037."""
    options = ConsumerOptions(mode="resumable", group="g")
    consumer = ListConsumer(_ticks(100_000), batch=1000, options=options)
    producer = ListProducer()
    stage = Stage(fails_from_first_bad, workers=workers, name="f")
    with pytest.raises(HandlerError) as caught:
        asyncio.run(Pipeline([stage], ordered=ordered).run(consumer, producer))
    assert "message ticks:0:50037 " in str(caught.value), caught.value
    sent = [m.seq for m in producer.sent]
    if ordered:
        assert sent == list(range(FIRST_BAD))
    else:  # every message before the first failure; outputs already written after it may stay
        assert set(range(FIRST_BAD)) <= set(sent) and FIRST_BAD not in sent
        assert len(sent) == len(set(sent))
    assert [m.seq for m in consumer.committed] == list(range(FIRST_BAD))


def test_fail_with_retries_exhausted_writes_everything_before_it() -> None:
    policy = ErrorPolicy(retries=2, backoff=0.001)
    consumer = ListConsumer(_ticks(60_000), batch=500)
    producer = ListProducer()
    stage = Stage(fails_from_first_bad, workers=8, on_error=policy)
    with pytest.raises(HandlerError, match="ticks:0:50037 "):
        asyncio.run(Pipeline([stage]).run(consumer, producer))
    assert [m.seq for m in producer.sent] == list(range(FIRST_BAD))


def test_fail_on_the_last_of_four_quick_messages_writes_the_first_three() -> None:
    def fourth(message: Message) -> bytes:
        if message.seq == 3:
            raise ValueError("no")
        return message.payload

    producer = ListProducer()
    with pytest.raises(HandlerError, match="in:0:3 "):
        asyncio.run(Pipeline([Stage(fourth)]).run(ListConsumer(make_messages(4)), producer))
    assert [m.seq for m in producer.sent] == [0, 1, 2]


def test_fail_in_a_later_stage_cuts_at_the_earliest_input_position() -> None:
    """Stage 2 fails at 30, stage 1 fails at 70 (seen first): the cut is 30."""

    def one(message: Message) -> bytes:
        if message.seq == 70:
            raise ValueError("stage one")
        return message.payload

    async def two(message: Message) -> bytes:
        if message.seq == 30:
            await asyncio.sleep(0.05)
            raise ValueError("stage two")
        return message.payload

    producer = ListProducer()
    stages = [Stage(one, workers=4, name="one"), Stage(two, workers=4, name="two")]
    with pytest.raises(HandlerError, match=r"in:0:30 .*stage two"):
        asyncio.run(Pipeline(stages).run(ListConsumer(make_messages(200), batch=10), producer))
    assert [m.seq for m in producer.sent] == list(range(30))


def test_batch_failure_writes_the_outputs_of_earlier_batches() -> None:
    def insert(rows: list[Message]) -> bytes:
        if any(m.seq == 12 for m in rows):
            raise OSError("db down")
        return b"%d" % rows[-1].seq

    producer = ListProducer()
    stage = Stage(insert, workers=3, batch=BatchSpec(size=5), name="db")
    with pytest.raises(HandlerError, match="from in:0:10"):
        asyncio.run(Pipeline([stage]).run(ListConsumer(make_messages(40), batch=7), producer))
    assert [m.payload for m in producer.sent] == [b"4", b"9"]
