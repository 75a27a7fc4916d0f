"""Loading ``module:callable`` and turning return values into messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamkit.errors import UsageError
from streamkit.message import Message
from streamkit.pipeline import Failure, PythonRunner, load_handler
from streamkit.pipeline.handlers import to_entry

SOURCE = Message("s", 2, 9, 1234, b"in", b"k", (("h", b"v"),))


def test_load_handler_from_an_include_dir(tmp_path: Path) -> None:
    (tmp_path / "sk_test_mod_a.py").write_text(
        "class Box:\n    @staticmethod\n    def up(m):\n        return m.payload.upper()\n"
    )
    handler = load_handler("sk_test_mod_a:Box.up", [str(tmp_path)])
    assert handler(SOURCE) == b"IN"


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("nocolon", "expected module:callable"),
        ("sk_no_such_module_x:f", "cannot import 'sk_no_such_module_x'"),
        ("json:no_such_attr", "'json' has no attribute 'no_such_attr'"),
        ("json:__doc__", "not a callable"),
    ],
)
def test_load_handler_errors_name_the_option(spec: str, text: str) -> None:
    with pytest.raises(UsageError, match=text) as caught:
        load_handler(spec)
    assert caught.value.where == "--func"


def test_module_that_raises_on_import(tmp_path: Path) -> None:
    (tmp_path / "sk_test_mod_b.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match="RuntimeError: boom"):
        load_handler("sk_test_mod_b:f", [str(tmp_path)])


def test_return_values_become_entries_keeping_identity() -> None:
    out = to_entry("text", SOURCE)
    assert isinstance(out, Message)
    assert (out.stream_key, out.shard_id, out.seq, out.timestamp, out.key, out.headers) == (
        "s", 2, 9, 1234, b"k", (("h", b"v"),),
    )  # fmt: skip
    assert out.payload == b"text"
    assert to_entry(b"in", SOURCE) == SOURCE
    assert to_entry(None, SOURCE) is None
    fan = to_entry([b"a", "b"], SOURCE)
    assert isinstance(fan, list) and [m.payload for m in fan] == [b"a", b"b"]
    assert isinstance(to_entry(3.5, SOURCE), Failure)


def test_sync_runs_in_threads_async_on_the_loop() -> None:
    import threading

    main_thread = threading.get_ident()

    def where(message: Message) -> bytes:
        return b"main" if threading.get_ident() == main_thread else b"thread"

    async def where_async(message: Message) -> bytes:
        return b"main" if threading.get_ident() == main_thread else b"thread"

    async def main() -> tuple[object, object]:
        sync_runner = PythonRunner(where, threads=2)
        async_runner = PythonRunner(where_async)
        try:
            return await sync_runner.run([SOURCE]), await async_runner.run([SOURCE])
        finally:
            await sync_runner.close()

    sync_out, async_out = asyncio.run(main())
    assert [m.payload for m in sync_out] == [b"thread"]  # type: ignore[attr-defined]
    assert [m.payload for m in async_out] == [b"main"]  # type: ignore[attr-defined]
