"""``LibrdkafkaClient``: librdkafka driven from C, against a real broker.

The backend's own tests run the producer on this client too (the ``produce_loop`` fixture);
these check the client's contract where the backend does not reach: every record of a random
batch arriving as it was sent, where ``produce_messages`` stops, what a refused or failed
record gives, log lines, metadata, closing, and when the backend falls back to
confluent-kafka's ``Producer``.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamkit.backends.kafka import librdkafka
from streamkit.backends.kafka import streamer as kafka_streamer
from streamkit.backends.kafka.librdkafka import LibrdkafkaClient, direct_client
from streamkit.errors import UsageError
from streamkit.formats import _speedups, line_compiled
from streamkit.message import Message, ReadTime
from tests.servers.kafka_broker import KafkaBroker, free_port

assert line_compiled  # imported for _speedups.configure(Message)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def client(address: str, **settings: str) -> LibrdkafkaClient:
    config = {"bootstrap.servers": address, "linger.ms": "1", **settings}
    made = direct_client({**config, "delivery.report.only.error": True})
    assert made is not None
    return made


def read_back(address: str, topic: str, count: int) -> list[Any]:
    """The first ``count`` records of partition 0 of ``topic``."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": "librdkafka-test"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    records: list[Any] = []
    deadline = time.monotonic() + 20
    try:
        while len(records) < count and time.monotonic() < deadline:
            for record in consumer.consume(count - len(records), 0.5):
                assert record.error() is None, record.error()
                records.append(record)
    finally:
        consumer.close()
    return records


def test_the_library_is_the_one_confluent_kafka_loaded() -> None:
    import confluent_kafka

    version, path = _speedups.librdkafka_version()
    assert version == confluent_kafka.libversion()[1]
    assert "librdkafka" in path


messages_ = st.lists(
    st.builds(
        Message,
        st.sampled_from(["t", "t", "t", "other"]),
        st.just(0),
        st.just(0),
        st.integers(1, 2**41) | st.integers(0, 2**41).map(ReadTime),  # 0 means "now" to Kafka
        st.binary(max_size=40),
        st.none() | st.binary(max_size=8),
        st.lists(st.tuples(st.text(max_size=4), st.binary(max_size=4)), max_size=3).map(tuple),
    ),
    max_size=25,
)


@pytest.fixture(autouse=True)
def enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """This client even under ``STREAMKIT_PURE_PYTHON=1`` (the extension is built either way)."""
    monkeypatch.setattr(librdkafka, "ENABLED", True)


@pytest.fixture(scope="module")
def shared(kafka_broker: KafkaBroker) -> Iterator[LibrdkafkaClient]:
    """One client for the tests that need a working one."""
    producer = client(kafka_broker.address)
    yield producer
    producer.close()


@pytest.fixture
def topic(kafka_broker: KafkaBroker) -> str:
    """A new topic of one partition."""
    name = kafka_broker.topic()
    kafka_broker.create_topic(name)
    return name


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages_, st.integers(0, 30), st.booleans())
def test_every_record_of_a_batch_arrives_as_sent(
    kafka_broker: KafkaBroker,
    shared: LibrdkafkaClient,
    items: list[Message],
    start: int,
    same: bool,
) -> None:
    producer = shared
    topic = kafka_broker.topic()  # one per example
    kafka_broker.create_topic(topic)
    items = [Message(topic if m.stream_key == "t" else m.stream_key, 0, 0, m.timestamp,
                     m.payload, m.key, m.headers) for m in items]  # fmt: skip
    before = now_ms()
    index, error = producer.produce_messages(topic, items, start, same)
    assert error is None
    end = len(items)
    if same:
        others = [i for i in range(start, len(items)) if items[i].stream_key != topic]
        end = others[0] if others else len(items)
    assert index == max(start, end)
    assert producer.flush(10.0) == 0
    after = now_ms()
    assert producer.failures() == (0, [], None)
    sent = items[start:end]
    got = read_back(kafka_broker.address, topic, len(sent))
    assert [(r.value() or b"", r.key(), r.headers() or []) for r in got] == [
        (m.payload, m.key, list(m.headers)) for m in sent
    ]
    for record, m in zip(got, sent):
        if type(m.timestamp) is ReadTime:  # left for librdkafka to stamp
            assert before - 1000 <= record.timestamp()[1] <= after + 1000
        else:
            assert record.timestamp()[1] == m.timestamp


def test_the_loop_leaves_what_it_does_not_take_to_python(
    shared: LibrdkafkaClient, topic: str
) -> None:
    producer = shared
    good = Message(topic, 0, 0, 1, b"x")
    odd = [
        "not a message",
        Message(topic, 0, 0, 1, bytearray(b"x")),  # type: ignore[arg-type]
        Message(topic, 0, 0, 1, b"x", key="str key"),  # type: ignore[arg-type]
        Message(topic, 0, 0, -1, b"x"),
        Message(topic, 0, 0, 2**64, b"x"),
        Message(topic, 0, 0, 1, b"x", headers=((1, b"v"),)),  # type: ignore[arg-type]
        Message(topic, 0, 0, 1, b"x", headers=(("h", 7),)),  # type: ignore[arg-type]
    ]
    for item in odd:
        assert producer.produce_messages(topic, [good, good, item, good], 0, False) == (2, None)
        assert producer.produce_messages(topic, (good, item), 0, True) == (1, None)
    assert producer.flush(10.0) == 0


def test_produce_takes_confluent_kafkas_positional_call(
    kafka_broker: KafkaBroker, shared: LibrdkafkaClient, topic: str
) -> None:
    producer = shared
    producer.produce(topic, b"two arguments")
    producer.produce(topic, "text", "key", -1, None, None, 1_700_000_000_000, [("h", "v")])
    producer.produce(topic, None, b"k", 0, None, None, 0, [("n", None)])
    assert producer.flush(10.0) == 0
    got = read_back(kafka_broker.address, topic, 3)
    assert [(r.value(), r.key(), r.headers()) for r in got] == [
        (b"two arguments", None, None),
        (b"text", b"key", [("h", b"v")]),
        (None, b"k", [("n", None)]),
    ]
    assert got[1].timestamp()[1] == 1_700_000_000_000
    with pytest.raises(TypeError, match="callbacks"):
        producer.produce(topic, b"x", None, -1, lambda *a: None)
    with pytest.raises(TypeError, match="bytes, str or None"):
        producer.produce(topic, 42)
    with pytest.raises(TypeError, match="headers"):
        producer.produce(topic, b"x", None, -1, None, None, 0, [("h",)])


def test_a_full_queue_is_a_buffer_error_and_a_refused_record_a_kafka_exception() -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer = client(dead, **{"queue.buffering.max.messages": "3"})
    try:
        for _ in range(3):
            producer.produce("t", b"x")
        with pytest.raises(BufferError):
            producer.produce("t", b"x")
        index, error = producer.produce_messages("t", [Message("t", 0, 0, 1, b"x")], 0, False)
        assert index == 0 and isinstance(error, BufferError)
    finally:
        producer.close()
    producer = client(dead, **{"message.max.bytes": "1000"})
    try:
        with pytest.raises(KafkaException, match="too large"):
            producer.produce("t", b"x" * 2000)
        big = Message("t", 0, 0, 1, b"x" * 2000)
        index, error = producer.produce_messages("t", [big], 0, False)
        assert index == 0 and isinstance(error, KafkaException)
        assert "too large" in str(error.args[0])
    finally:
        producer.close()


def test_failed_deliveries_are_counted_and_the_first_three_described() -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer = client(dead, **{"message.timeout.ms": "200"})
    try:
        batch = [Message("gone", 0, 0, ReadTime(1), b"x")] * 5
        assert producer.produce_messages("gone", batch, 0, False) == (5, None)
        deadline = time.monotonic() + 10
        while producer.flush(0.5) and time.monotonic() < deadline:
            pass
        count, texts, unknown = producer.failures()
        assert count == 5
        assert len(texts) == 3
        assert all(t.startswith("topic 'gone' partition -1: ") for t in texts), texts
        assert "timed out" in texts[0]
        assert unknown is None
        assert producer.failures() == (0, [], None)
    finally:
        producer.close()


def test_log_lines_reach_the_logger_from_the_polling_thread() -> None:
    lines: list[tuple[int, str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append((record.levelno, record.getMessage(), threading.current_thread().name))

    logger = logging.getLogger("streamkit.test.librdkafka")
    logger.addHandler(Keep())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    dead = f"127.0.0.1:{free_port()}"
    made = direct_client({"bootstrap.servers": dead, "logger": logger})
    assert made is not None
    try:
        made.produce("t", b"x")
        deadline = time.monotonic() + 10
        while not any("FAIL" in text for _, text, _ in lines) and time.monotonic() < deadline:
            made.poll(0.1)
    finally:
        made.close()
    fails = [(level, text, thread) for level, text, thread in lines if text.startswith("FAIL")]
    assert fails, lines
    level, text, thread = fails[0]
    assert level == logging.ERROR
    assert f"[{made.name or 'rdkafka#producer'}" in text or "[rdkafka#producer-" in text
    assert dead in text
    assert thread == threading.current_thread().name


def test_metadata_names_the_partitions_and_a_request_that_fails_raises() -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer = client(dead)
    try:
        with pytest.raises(KafkaException, match=r"[Tt]imed out|transport failure"):
            producer.list_topics("t", 0.3)
    finally:
        producer.close()


def test_list_topics_has_confluent_kafkas_shape(shared: LibrdkafkaClient, topic: str) -> None:
    producer = shared
    listing = producer.list_topics(topic, 5.0)
    assert listing.topics[topic].error is None
    assert sorted(listing.topics[topic].partitions) == [0]


def test_close_is_final_and_may_be_repeated(kafka_broker: KafkaBroker) -> None:
    producer = client(kafka_broker.address)
    assert producer.name is not None and producer.name.startswith("rdkafka#producer-")
    producer.close()
    producer.close()
    assert producer.name is None
    with pytest.raises(RuntimeError, match="closed"):
        producer.produce("t", b"x")
    with pytest.raises(RuntimeError, match="closed"):
        producer.flush(0.1)


def test_a_setting_librdkafka_refuses_is_a_value_error_with_its_text() -> None:
    with pytest.raises(ValueError, match=r'No such configuration property: "no\.such"'):
        direct_client({"bootstrap.servers": "127.0.0.1:1", "no.such": "1"})
    with pytest.raises(ValueError, match=r'property "queue\.buffering\.max\.ms"'):  # its alias
        direct_client({"bootstrap.servers": "127.0.0.1:1", "linger.ms": "soon"})


def test_the_backend_names_a_refused_setting_as_for_confluent_kafka() -> None:
    settings = {"kafka.linger.ms": "soon"}
    config = {"bootstrap.servers": "127.0.0.1:1", "linger.ms": "soon"}
    with pytest.raises(UsageError) as caught:
        kafka_streamer._construct(direct_client, config, settings)
    assert caught.value.where == "-X kafka.linger.ms=soon"
    assert "linger.ms" in str(caught.value)


def test_confluent_kafka_serves_where_this_client_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"bootstrap.servers": "127.0.0.1:1"}
    assert direct_client({**config, "error_cb": print}) is None  # a callback only it takes
    monkeypatch.setattr(librdkafka, "ENABLED", False)
    assert direct_client(config) is None


def test_spans_go_from_their_chunk_and_a_span_outside_it_is_refused(
    kafka_broker: KafkaBroker, shared: LibrdkafkaClient, topic: str
) -> None:
    producer = shared
    chunk = b"first|second|third"
    spans = bytearray(
        struct.pack("qqq", 0, 5, 1_700_000_000_000)
        + struct.pack("qqq", 6, 6, -1)
        + struct.pack("qqq", 13, 5, 1_700_000_000_002)
    )
    before = now_ms()
    assert producer.produce_spans(topic, chunk, spans, 1) == (3, None)  # from the second
    assert producer.flush(10.0) == 0
    got = read_back(kafka_broker.address, topic, 2)
    assert [(r.value(), r.key(), r.headers()) for r in got] == [
        (b"second", None, None),
        (b"third", None, None),
    ]
    assert got[0].timestamp()[1] >= before - 1000  # -1: stamped by librdkafka
    assert got[1].timestamp()[1] == 1_700_000_000_002
    outside = bytearray(struct.pack("qqq", 15, 5, 0))
    with pytest.raises(ValueError, match="outside the chunk"):
        producer.produce_spans(topic, chunk, outside, 0)
    with pytest.raises(ValueError, match="start out of range"):
        producer.produce_spans(topic, chunk, spans, 4)


def _poll_until_closed(producer: LibrdkafkaClient, outcomes: list[object]) -> None:
    try:
        while True:
            producer.poll(0.02)
    except RuntimeError as error:  # closed
        outcomes.append(error)


def test_close_waits_for_a_poll_running_in_another_thread(kafka_broker: KafkaBroker) -> None:
    # close() from one thread while another polls without the GIL (a relay stopped while it
    # waited for room in the queue): the client is destroyed after that poll, not under it.
    for _ in range(20):
        producer = client(kafka_broker.address)
        producer.produce("t", b"x")
        outcomes: list[object] = []

        poller = threading.Thread(target=_poll_until_closed, args=(producer, outcomes))
        poller.start()
        time.sleep(0.01)
        producer.close()
        poller.join(5)
        assert not poller.is_alive()
        assert len(outcomes) == 1 and "closed" in str(outcomes[0])
