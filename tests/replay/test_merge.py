"""The pure k-way merge: sorted, nothing lost, stable tie order, late messages counted."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.message import Message
from streamkit.replay.merge import Merger

KEYS = ("a", "b", "c")


def make_inputs(specs: list[list[tuple[int, int]]]) -> list[list[Message]]:
    """Per input, its messages in timestamp order; payload ``input:position`` identifies one."""
    inputs = []
    for index, spec in enumerate(specs):
        ordered = sorted(spec, key=lambda pair: pair[0])  # stable: keys stay as drawn
        inputs.append(
            [
                Message(KEYS[key], 0, pos, ts, f"{index}:{pos}".encode())
                for pos, (ts, key) in enumerate(ordered)
            ]
        )
    return inputs


def expected_order(inputs: list[list[Message]]) -> list[bytes]:
    tagged = [
        (m.timestamp, m.stream_key, i, p, m)
        for i, ms in enumerate(inputs)
        for p, m in enumerate(ms)
    ]
    return [t[4].payload for t in sorted(tagged, key=lambda t: t[:4])]


specs = st.lists(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=40),
    min_size=1,
    max_size=4,
)


@st.composite
def schedules(
    draw: st.DrawFn,
) -> tuple[list[list[Message]], list[tuple[str, int, int]], list[str | None] | None]:
    """Inputs cut into random batches, and a random interleaving of push/end/take steps."""
    inputs = make_inputs(draw(specs))
    single_key = draw(st.booleans())
    if single_key:  # each input one stream key: the merger's no-tuple path
        inputs = [
            [Message(KEYS[(i * 2) % 3], 0, m.seq, m.timestamp, m.payload) for m in ms]
            for i, ms in enumerate(inputs)
        ]
    declared: list[str | None] | None = None
    if single_key and draw(st.booleans()):  # ... and the caller says so: ties at the bound go
        declared = [KEYS[(i * 2) % 3] for i in range(len(inputs))]
    steps: list[tuple[str, int, int]] = []
    cursors = [0] * len(inputs)
    live = list(range(len(inputs)))
    while live:
        index = draw(st.sampled_from(live))
        left = len(inputs[index]) - cursors[index]
        if left == 0:
            steps.append(("end", index, 0))
            live.remove(index)
        else:
            size = draw(st.integers(1, left))
            steps.append(("push", index, size))
            cursors[index] += size
        if draw(st.booleans()):
            steps.append(("take", 0, 0))
    return inputs, steps, declared


def run(
    inputs: list[list[Message]],
    steps: list[tuple[str, int, int]],
    merger: Merger,
    silences: list[int] | None = None,
) -> list[Message]:
    out: list[Message] = []
    cursors = [0] * len(inputs)
    for n, (what, index, size) in enumerate(steps):
        if what == "push":
            merger.push(index, inputs[index][cursors[index] : cursors[index] + size])
            cursors[index] += size
        elif what == "end":
            merger.end(index)
        else:
            out.extend(merger.take())
        if silences and n < len(silences) and silences[n] < len(inputs):
            merger.silence(silences[n])
    out.extend(merger.take())
    assert merger.finished
    return out


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_merge_is_sorted_complete_and_stable(
    case: tuple[list[list[Message]], list[tuple[str, int, int]], list[str | None] | None],
) -> None:
    inputs, steps, declared = case
    merger = Merger(len(inputs), keys=declared)
    out = run(inputs, steps, merger)
    assert [m.payload for m in out] == expected_order(inputs)
    assert merger.late == 0 and merger.dropped == 0
    assert merger.emitted == sum(map(len, inputs))


@settings(max_examples=300, deadline=None)
@given(schedules(), st.lists(st.integers(0, 6), max_size=60))
def test_silenced_inputs_lose_nothing_and_late_ones_are_counted(
    case: tuple[list[list[Message]], list[tuple[str, int, int]], list[str | None] | None],
    silences: list[int],
) -> None:
    inputs, steps, declared = case
    merger = Merger(len(inputs), keys=declared)
    out = run(inputs, steps, merger, silences)
    assert sorted(m.payload for m in out) == sorted(m.payload for ms in inputs for m in ms)
    backwards = 0
    high = -math.inf
    for message in out:
        if message.timestamp < high:
            backwards += 1
        high = max(high, message.timestamp)
    assert merger.late == backwards


@settings(max_examples=300, deadline=None)
@given(schedules(), st.lists(st.integers(0, 6), max_size=60))
def test_dropping_late_messages_keeps_the_output_sorted(
    case: tuple[list[list[Message]], list[tuple[str, int, int]], list[str | None] | None],
    silences: list[int],
) -> None:
    inputs, steps, declared = case
    merger = Merger(len(inputs), late="drop", keys=declared)
    out = run(inputs, steps, merger, silences)
    assert [m.timestamp for m in out] == sorted(m.timestamp for m in out)
    everything = {m.payload for ms in inputs for m in ms}
    assert {m.payload for m in out} <= everything
    assert len(out) + merger.dropped == len(everything)


def test_equal_timestamps_go_by_stream_key_then_input_order() -> None:
    merger = Merger(3)
    merger.push(0, [Message("b", 0, 1, 5, b"0b"), Message("a", 0, 2, 5, b"0a")])
    merger.push(1, [Message("a", 0, 1, 5, b"1a")])
    merger.push(2, [Message("b", 0, 1, 5, b"2b")])
    for index in range(3):
        merger.end(index)
    assert [m.payload for m in merger.take()] == [b"0a", b"1a", b"0b", b"2b"]


def test_an_input_that_said_nothing_holds_everything_until_it_is_silenced() -> None:
    merger = Merger(2, keys=["a", "b"])
    merger.push(0, [Message("a", 0, i, 10 + i, b"") for i in range(5)])
    assert merger.take() == []
    assert merger.blocking() == [1]
    merger.silence(1)
    assert [m.timestamp for m in merger.take()] == [10, 11, 12, 13, 14]
    assert merger.blocking() == []
    # It speaks again: older than the output so far is late, newer merges as usual.
    merger.push(1, [Message("b", 0, 0, 12, b""), Message("b", 0, 1, 20, b"")])
    merger.push(0, [Message("a", 0, 9, 30, b"")])
    assert [m.timestamp for m in merger.take()] == [12, 20]
    assert merger.late == 1


def test_a_late_message_goes_out_at_once() -> None:
    merger = Merger(2)
    merger.push(0, [Message("a", 0, 0, 10, b"a10"), Message("a", 0, 1, 20, b"a20")])
    merger.silence(1)
    merger.end(0)
    assert [m.payload for m in merger.take()] == [b"a10", b"a20"]
    # Input 1 comes back with one old message: nothing can make it less late, so it does not
    # wait for input 1 to say something newer.
    merger.push(1, [Message("b", 0, 0, 15, b"b15")])
    assert [m.payload for m in merger.take()] == [b"b15"]
    assert merger.late == 1
    merger.push(1, [Message("b", 0, 1, 20, b"b20")])
    assert merger.take() == []  # not late: waits as usual (input 1 may send another 20)
    merger.end(1)
    assert [m.payload for m in merger.take()] == [b"b20"]


def test_declared_keys_let_a_quiet_input_s_newest_message_go() -> None:
    merger = Merger(2, keys=["a", "b"])
    merger.push(0, [Message("a", 0, 0, 7, b""), Message("a", 0, 1, 8, b"")])
    merger.push(1, [Message("b", 0, 0, 8, b"")])
    # Input 0's future messages sort at ("a", 0) or later: its 8 goes before input 1's 8,
    # and input 1's 8 must wait, since input 0 may still send an 8.
    assert [(m.stream_key, m.timestamp) for m in merger.take()] == [("a", 7), ("a", 8)]
    merger.end(0)
    assert [(m.stream_key, m.timestamp) for m in merger.take()] == [("b", 8)]
    merger = Merger(1, keys=["a"])
    merger.push(0, [Message("a", 0, 0, 7, b"")])
    assert len(merger.take()) == 1  # alone, nothing waits on itself
    merger.push(0, [Message("z", 0, 1, 9, b"")])  # not what was declared: strict again
    assert merger.take() == []


def test_the_bound_is_each_input_s_last_timestamp() -> None:
    merger = Merger(2)
    merger.push(0, [Message("a", 0, i, t, b"") for i, t in enumerate((1, 4, 9))])
    merger.push(1, [Message("b", 0, i, t, b"") for i, t in enumerate((2, 3, 5))])
    assert [m.timestamp for m in merger.take()] == [1, 2, 3, 4]  # < 5, input 1's last
    assert merger.blocking() == [1]
    merger.end(1)
    # Input 0 may still send another 9 of a key before "a": without declared keys it waits.
    assert [m.timestamp for m in merger.take()] == [5]
    assert merger.blocking() == [0]
    merger.end(0)
    assert [m.timestamp for m in merger.take()] == [9]
    assert merger.finished


def test_unknown_late_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="late"):
        Merger(1, late="keep")
