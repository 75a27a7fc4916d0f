"""User handlers: loading ``module:callable`` and running one over a chunk of messages.

A handler takes one Message (or, after a batcher, a list of them) and returns a payload (bytes or
str), a list of payloads (fan-out), a Message (used as is), or None (drop). Outputs keep the
input's stream key, shard, seq, timestamp, key and headers, so time-based seeks on the output
find the same instants as on the input.

Sync handlers run a whole chunk per thread-pool call (one hand-off per chunk, not per message);
async handlers are awaited one after the other on the event loop, so a stage's concurrency is
its number of workers in both cases. A failing call becomes a ``Failure`` entry; what happens
next is the stage's error policy, not the runner's business.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from streamkit.errors import UsageError
from streamkit.message import Message
from streamkit.pipeline.chunks import Entry

__all__ = [
    "Call",
    "Failure",
    "Handler",
    "Outcome",
    "PythonRunner",
    "Runner",
    "load_handler",
    "to_entry",
]

Call = Message | list[Message]
Handler = Callable[[Any], Any]


class Failure:
    """A handler call that raised (or returned something unusable)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Failure({self.error!r})"


Outcome = Entry | Failure


class Runner(Protocol):
    """Runs a handler over many calls at once; one outcome per call, in order."""

    name: str

    async def run(self, calls: Sequence[Call]) -> list[Outcome]: ...

    async def close(self) -> None: ...


def load_handler(spec: str, paths: Sequence[str] = (), *, option: str = "--func") -> Handler:
    """Import ``package.module:attr.attr`` after putting ``paths`` first on ``sys.path``.

    The working directory is appended last, so ``--func mymodule:fn`` works from the folder
    that holds ``mymodule.py`` without shadowing installed packages.
    """
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"expected module:callable, got {spec!r}", option)
    for path in reversed(paths):
        absolute = os.path.abspath(path)
        if absolute not in sys.path:
            sys.path.insert(0, absolute)
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"cannot import {module_name!r}: {error}", option) from None
    except Exception as error:  # the module itself raised while importing
        raise UsageError(
            f"importing {module_name!r} failed: {type(error).__name__}: {error}", option
        ) from None
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr_path!r}", option) from None
    if not callable(target):
        raise UsageError(f"{spec!r} is a {type(target).__name__}, not a callable", option)
    handler: Handler = target
    return handler


def is_async(handler: Handler) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - callable objects
    return inspect.iscoroutinefunction(call)


def _message(result: bytes, source: Message) -> Message:
    if result is source.payload:
        return source
    return Message(
        source.stream_key,
        source.shard_id,
        source.seq,
        source.timestamp,
        result,
        source.key,
        source.headers,
    )


def _one(item: Any, source: Message) -> Message:
    kind = type(item)
    if kind is bytes:
        return _message(item, source)
    if kind is str:
        return _message(item.encode("utf-8"), source)
    if isinstance(item, Message):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _message(bytes(item), source)
    raise TypeError(
        f"handler returned {kind.__name__}; return bytes, str, a Message, a list of them, or None"
    )


def to_entry(result: Any, call: Call) -> Outcome:
    """A handler's return value as a pipeline entry (or a Failure for an unusable value)."""
    source = call if isinstance(call, Message) else call[-1]
    try:
        if result is None:
            return None
        if isinstance(result, (list, tuple)):
            return [_one(item, source) for item in result]
        return _one(result, source)
    except TypeError as error:
        return Failure(error)


def run_calls(handler: Handler, calls: Sequence[Call]) -> list[Outcome]:
    """Call ``handler`` on each of ``calls``; the body of one thread-pool job."""
    out: list[Outcome] = []
    append = out.append
    for call in calls:
        try:
            result = handler(call)
        except Exception as error:
            append(Failure(error))
            continue
        if type(result) is bytes and type(call) is Message:
            append(call if result is call.payload else _message(result, call))
        else:
            append(to_entry(result, call))
    return out


class PythonRunner:
    """Runs a Python callable: sync in a private thread pool, async on the event loop."""

    def __init__(self, handler: Handler, *, threads: int = 1, name: str | None = None) -> None:
        self.handler = handler
        self.name: str = name or str(getattr(handler, "__qualname__", repr(handler)))
        self.is_async = is_async(handler)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if not self.is_async:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, threads), thread_name_prefix="streamkit-handler"
            )

    async def run(self, calls: Sequence[Call]) -> list[Outcome]:
        if not calls:
            return []
        if self._pool is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, run_calls, self.handler, calls)
        out: list[Outcome] = []
        for call in calls:
            try:
                result = await self.handler(call)
            except Exception as error:
                out.append(Failure(error))
                continue
            out.append(to_entry(result, call))
        return out

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
