"""``--exec``: long-running child processes, one line in, one line out."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.errors import HandlerError
from streamkit.message import Message
from streamkit.pipeline import ErrorPolicy, ExecPool, Pipeline, Stage
from tests.pipeline.streams import ListConsumer, ListProducer, make_messages


def run_exec(
    command: str, messages: list[Message], workers: int = 1, **stage: object
) -> ListProducer:
    producer = ListProducer()
    pool = ExecPool(command, processes=workers)
    pipeline = Pipeline([Stage(pool, workers=workers, **stage)])  # type: ignore[arg-type]
    asyncio.run(pipeline.run(ListConsumer(messages, batch=250), producer))
    return producer


def test_shell_command_transforms_each_line_in_order() -> None:
    producer = run_exec("sed -u 's/^/got /'", make_messages(2000), workers=3)
    assert producer.payloads() == [f"got m{n}".encode() for n in range(2000)]
    assert producer.sent[5].timestamp == make_messages(6)[5].timestamp


def test_shell_loop_and_empty_line_drops() -> None:
    script = 'while IFS= read -r line; do case "$line" in *5) echo;; *) echo "<$line>";; esac; done'
    producer = run_exec(script, make_messages(30))
    assert producer.payloads() == [f"<m{n}>".encode() for n in range(30) if n % 10 != 5]


def test_command_that_dies_fails_with_its_status() -> None:
    with pytest.raises(HandlerError, match=r"exited \(status 3\) after answering 2 of"):
        run_exec("head -n 2; exit 3", make_messages(10))


def test_dead_child_is_replaced_under_skip() -> None:
    # each child answers two lines then exits: chunks of 3 lose one line each, then a new child
    warnings: list[str] = []
    pool = ExecPool("head -n 2", processes=1)
    producer = ListProducer()
    pipeline = Pipeline([Stage(pool, on_error=ErrorPolicy("skip"))], warn=warnings.append)
    snapshot = asyncio.run(pipeline.run(ListConsumer(make_messages(9), batch=3), producer))
    assert producer.payloads() == [f"m{n}".encode() for n in range(9) if n % 3 != 2]
    assert snapshot.skipped == 3


def test_payload_with_newline_is_refused_per_message() -> None:
    messages = make_messages(3)
    messages[1] = Message("in", 0, 1, 1, b"two\nlines")
    with pytest.raises(HandlerError, match=r"in:0:1 .*newline"):
        run_exec("cat", messages)


def test_c_stdio_programs_answer_per_line_under_stdbuf() -> None:
    producer = run_exec("tr a-z A-Z", make_messages(300), workers=2)
    assert producer.payloads() == [f"M{n}".encode() for n in range(300)]


def test_a_silent_command_gets_one_warning() -> None:
    warnings: list[str] = []
    pool = ExecPool("sleep 0.4; exec sed -u 's/^/late /'", stall_warning=0.1, warn=warnings.append)
    producer = ListProducer()
    asyncio.run(Pipeline([Stage(pool)]).run(ListConsumer(make_messages(5)), producer))
    assert producer.payloads() == [f"late m{n}".encode() for n in range(5)]
    assert len(warnings) == 1 and "flush" in warnings[0]
