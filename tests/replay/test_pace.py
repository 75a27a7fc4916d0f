"""``Pacer`` on a fake clock: scaled gaps, absolute deadlines, batch-wise slicing, hurry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from streamkit.errors import UsageError
from streamkit.message import Message
from streamkit.replay.pace import Pacer, parse_pace
from tests.replay.clocks import FakeClock

T0 = 1_795_000_000_000


def recording(timestamps: Sequence[int]) -> list[Message]:
    return [Message("rec", 0, i + 1, T0 + ts, b"%d" % i) for i, ts in enumerate(timestamps)]


def chunks(messages: list[Message], size: int) -> list[list[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


async def replay(
    pacer: Pacer, batches: list[list[Message]], work: float = 0.0
) -> list[tuple[float, list[Message]]]:
    """Every slice the pacer lets through, with the (fake) time it was let through."""
    assert isinstance(pacer.clock, FakeClock)
    clock = pacer.clock
    out: list[tuple[float, list[Message]]] = []
    for batch in batches:
        async for part in pacer.pace(batch):
            out.append((clock.now(), list(part)))
            clock.work(work)
    return out


@pytest.mark.parametrize("batch_size", [1, 7, 101, 1000])
def test_10x_over_100ms_gaps_takes_a_tenth_of_the_span(batch_size: int) -> None:
    messages = recording([i * 100 for i in range(101)])  # a 10 s recording
    clock = FakeClock()
    start = clock.now()
    out = asyncio.run(replay(Pacer(10.0, clock), chunks(messages, batch_size)))
    elapsed = clock.now() - start
    assert elapsed == pytest.approx(1.0, rel=0.05)
    assert [m for _, part in out for m in part] == messages
    for at, part in out:  # nothing early; a slice starts exactly at its first deadline
        assert at == pytest.approx(start + (part[0].timestamp - T0) / 10_000)
        for message in part:
            assert at >= start + (message.timestamp - T0) / 10_000 - 1e-9


@pytest.mark.parametrize(("pace", "span"), [(1.0, 2.0), (0.5, 4.0), (4.0, 0.5)])
def test_the_speed_scales_the_span(pace: float, span: float) -> None:
    messages = recording([i * 50 for i in range(41)])  # 2 s
    clock = FakeClock()
    asyncio.run(replay(Pacer(pace, clock), [messages]))
    assert clock.now() - 5000.0 == pytest.approx(span, rel=0.01)


def test_deadlines_are_absolute_so_work_and_late_wakeups_do_not_accumulate() -> None:
    # 1000 gaps of 10 ms; every sleep wakes 2 ms late and every send costs 3 ms of the 10.
    # Relative sleeps would end ~5 s late; absolute deadlines end one wake-up plus one send late.
    messages = recording([i * 10 for i in range(1001)])
    clock = FakeClock(oversleep=0.002)
    pacer = Pacer(1.0, clock)
    out = asyncio.run(replay(pacer, chunks(messages, 50), work=0.003))
    assert clock.now() - 5000.0 <= 10.0 + 0.002 + 0.003 + 1e-6
    assert [m for _, part in out for m in part] == messages
    # Each message went out no later than one late wake-up plus one send after its deadline.
    for at, part in out:
        due = 5000.0 + (part[0].timestamp - T0) / 1000
        assert at <= due + 0.005 + 1e-6


def test_a_batch_is_split_only_where_a_wait_is_needed() -> None:
    # Five timestamps, each shared by 100 messages: four waits, five slices, in one batch.
    messages = recording([t for t in (0, 200, 400, 600, 800) for _ in range(100)])
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    out = asyncio.run(replay(pacer, [messages]))
    assert pacer.waits == 4
    assert [len(part) for _, part in out] == [100] * 5
    assert [at - 5000.0 for at, _ in out] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])


def test_a_timestamp_going_backwards_is_sent_at_once() -> None:
    messages = recording([0, 1000, 500, 400, 2000])
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    out = asyncio.run(replay(pacer, [messages]))
    assert pacer.waits == 2  # for 1000 and for 2000 only
    assert [(at - 5000.0, [int(m.payload) for m in part]) for at, part in out] == [
        (0.0, [0]),
        (1.0, [1, 2, 3]),
        (2.0, [4]),
    ]


def test_messages_already_due_after_slow_work_do_not_wait() -> None:
    messages = recording([i * 100 for i in range(20)])
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    # Sending each slice takes 1 s, ten times a gap: the pacer never needs to sleep again.
    out = asyncio.run(replay(pacer, chunks(messages, 5), work=1.0))
    assert pacer.waits == 0
    assert sum(len(part) for _, part in out) == 20


def test_hurry_ends_a_wait_and_lets_the_rest_through() -> None:
    messages = recording([0, 100_000, 200_000])  # 200 s at 1x, on the real clock

    async def run() -> tuple[float, list[Message]]:
        pacer = Pacer(1.0)
        asyncio.get_running_loop().call_later(0.05, pacer.hurry)
        start = time.monotonic()
        got = [m async for part in pacer.pace(messages) for m in part]
        return time.monotonic() - start, got

    elapsed, got = asyncio.run(run())
    assert got == messages
    assert elapsed < 10.0


@pytest.mark.parametrize(
    ("text", "speed"),
    [("max", None), ("MAX", None), ("1x", 1.0), ("10x", 10.0), ("0.5x", 0.5), ("2", 2.0)],
)
def test_parse_pace(text: str, speed: float | None) -> None:
    assert parse_pace(text) == speed


@pytest.mark.parametrize("text", ["0x", "fast", "-1x", "x", "1xx", "", "inf"])
def test_parse_pace_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError, match="--pace"):
        parse_pace(text)
