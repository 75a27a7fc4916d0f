"""kcat reads what the Kafka backend writes, and the backend reads what kcat writes."""

from __future__ import annotations

from streamkit.message import Message
from tests.backends.kafka.helpers import drain, produce, run, streamer
from tests.servers.kafka_broker import KafkaBroker, Kcat


def test_kcat_reads_payload_key_headers_and_timestamp(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    sent = [
        Message(
            topic,
            0,
            0,
            1_700_000_000_000 + 7 * i,
            b"payload %d" % i,
            b"key%d" % i,
            (("src", b"sk%d" % i),),
        )
        for i in range(25)
    ]

    async def main() -> None:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, sent)

    run(main())
    out = kcat.run(
        ["-b", kafka_broker.address, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%k|%T|%h|%o|%s\\n"]
    ).stdout  # fmt: skip
    lines = out.decode().splitlines()
    assert lines == [
        f"key{i}|{1_700_000_000_000 + 7 * i}|src=sk{i}|{i}|payload {i}" for i in range(25)
    ]


def test_backend_reads_what_kcat_produced(kafka_broker: KafkaBroker, kcat: Kcat) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    lines = [f"k{i}:value {i}" for i in range(30)]
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", topic, "-K:", "-H", "origin=kcat", "-H", "bare"],
        input=("\n".join(lines) + "\n").encode(),
    )

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            return await drain(await s.consumer(topic, offset="start", follow=False))

    got = run(main())
    assert [(m.key, m.payload, m.headers) for m in got] == [
        (b"k%d" % i, b"value %d" % i, (("origin", b"kcat"), ("bare", b""))) for i in range(30)
    ]
    assert [m.seq for m in got] == list(range(30))
    assert all(m.timestamp > 1_700_000_000_000 for m in got)
