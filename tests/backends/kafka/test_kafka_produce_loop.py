"""The C produce loop (``_speedups.kafka_produce``) against the calls the Python path makes.

No broker here: ``produce`` is a recording stand-in, so the exact arguments, where the loop
stops, what it does with exceptions and with bad input can be checked call by call."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.formats import _speedups, line_compiled
from streamkit.message import Message, ReadTime

assert line_compiled  # imported for _speedups.configure(Message)

loop = _speedups.kafka_produce  # also under STREAMKIT_PURE_PYTHON=1


def reference(topic: str, item: Message) -> tuple[object, ...]:
    """The arguments the Python path gives produce() for one Message (``create_time``: 0 for
    a time filled in at reading), as the C loop passes them: a Message of that kind with no key
    and no headers gets the short call, whose omitted arguments default to exactly those."""
    headers = list(item.headers) if item.headers else None
    read_time = type(item.timestamp) is ReadTime
    if read_time and item.key is None and headers is None:
        return (topic, item.payload)
    return (topic, item.payload, item.key, -1, None, None, 0 if read_time else item.timestamp,
            headers)  # fmt: skip


class Recorder:
    def __init__(self, fail_at: int = -1, error: BaseException | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail_at, self.error = fail_at, error

    def __call__(self, *args: object) -> None:
        if len(self.calls) == self.fail_at and self.error is not None:
            raise self.error
        self.calls.append(args)


messages_ = st.lists(
    st.builds(
        Message,
        st.sampled_from(["t", "u"]),
        st.integers(0, 3),
        st.integers(0, 10),
        st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**63 - 1).map(ReadTime),
        st.binary(max_size=20),
        st.none() | st.binary(max_size=5),
        st.lists(st.tuples(st.text(max_size=3), st.none() | st.binary(max_size=3)), max_size=3).map(
            tuple
        ),
    ),
    max_size=30,
)


@given(messages_, st.integers(0, 35), st.booleans())
def test_the_calls_are_the_python_paths(items: list[Message], start: int, same: bool) -> None:
    produce = Recorder()
    index, error = loop(produce, "t", items, start, same)
    assert error is None
    expected_end = len(items)
    if same:
        others = [i for i in range(start, len(items)) if items[i].stream_key != "t"]
        expected_end = others[0] if others else len(items)
    assert index == max(start, expected_end)
    assert produce.calls == [reference("t", m) for m in items[start:expected_end]]


def test_a_produce_that_keeps_its_arguments_sees_them_unchanged() -> None:
    # The loop refills one argument tuple only while nobody else holds it. An exception type
    # is a callable that keeps the very tuple it was called with (as ``args``), as a produce()
    # holding on to its arguments would; a Python function would get a copy.
    items = [Message("t", 0, 0, i, b"%d" % i, None, ()) for i in range(5)]

    class Kept(Exception):
        every: list[Kept] = []

        def __init__(self, *args: object) -> None:
            Kept.every.append(self)

    assert loop(Kept, "t", tuple(items), 0, False) == (5, None)
    assert [kept.args for kept in Kept.every] == [reference("t", m) for m in items]


def test_it_stops_at_an_item_that_is_not_a_message() -> None:
    produce = Recorder()
    items: list[Any] = [Message("t", 0, 0, 1, b"a"), b"raw", Message("t", 0, 0, 2, b"b")]
    assert loop(produce, "t", items, 0, False) == (1, None)
    assert loop(produce, "t", items, 2, False) == (3, None)
    assert [c[1] for c in produce.calls] == [b"a", b"b"]


def test_a_subclass_of_message_is_left_to_python() -> None:
    class Sub(Message):
        __slots__ = ()

    assert loop(Recorder(), "t", [Sub("t", 0, 0, 1, b"a")], 0, False) == (0, None)


@pytest.mark.parametrize("error", [BufferError("full"), ValueError("bad"), KeyboardInterrupt()])
def test_what_produce_raises_comes_back_with_the_index_of_the_refused_record(
    error: BaseException,
) -> None:
    items = [Message("t", 0, 0, i, b"%d" % i) for i in range(10)]
    produce = Recorder(fail_at=4, error=error)
    index, got = loop(produce, "t", items, 0, False)
    assert (index, got) == (4, error)
    assert got is not None and got.__traceback__ is not None
    assert len(produce.calls) == 4
    produce.error = None
    assert loop(produce, "t", items, index, False) == (10, None)
    assert [c[1] for c in produce.calls] == [m.payload for m in items]


@pytest.mark.parametrize(
    "args",
    [
        (),
        (print, "t", [], 0),
        (None, "t", [], 0, False),
        (print, b"t", [], 0, False),
        (print, "t", iter([]), 0, False),
        (print, "t", [], -1, False),
        (print, "t", [], "0", False),
        (print, "t", [], 2**70, False),
    ],
)
def test_bad_arguments_raise(args: tuple[Any, ...]) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError)):
        loop(*args)


def test_nothing_leaks_on_success_stops_or_errors() -> None:
    payload, key, headers = b"p" * 100, b"k", (("h", b"v"),)
    items: list[Any] = [Message("t", 0, 0, 1, payload, key, headers) for _ in range(50)]
    items.append(object())
    error = BufferError("full")
    before = [sys.getrefcount(o) for o in (payload, key, headers, error)]

    def run() -> None:
        assert loop(Recorder(), "t", items, 0, False) == (50, None)
        assert loop(Recorder(fail_at=7, error=error), "t", items, 0, False) == (7, error)
        error.__traceback__ = None

    run()
    gc.collect()
    tracemalloc.start()
    try:
        run()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            run()
        gc.collect()
        last, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last - first < 20_000
    assert [sys.getrefcount(o) for o in (payload, key, headers, error)] == before
