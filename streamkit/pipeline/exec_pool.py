"""``--exec 'command'``: a pool of long-running child processes as the handler.

Each child reads one payload per line on stdin and writes one result line per input line on
stdout, so any language can be a processor. A chunk is written in one go and its answers are
read in large reads (no round trip per message); the transport buffers the write, so a child
that answers while we are still writing cannot deadlock us. An empty result line drops the
message. The child must answer each line before it reads more: programs built on C stdio (``tr``,
``awk``, ``sed``...) are started under ``stdbuf -oL`` when it exists, so they flush per line;
others need their own switch (``python -u``). A command silent for ``stall_warning`` seconds
while owing answers gets one warning on stderr saying so.

A payload containing a newline cannot be sent and fails under the error policy. A child that
exits fails the messages it did not answer; the next chunk starts a fresh child.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import Callable, Sequence

from streamkit.errors import HandlerError
from streamkit.message import Message
from streamkit.pipeline.handlers import Call, Failure, Outcome, to_entry

__all__ = ["ExecPool"]

_READ = 1 << 16


class _Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.buffer = b""

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class ExecPool:
    """Up to ``processes`` children of ``sh -c command``, each serving one chunk at a time."""

    def __init__(
        self,
        command: str,
        processes: int = 1,
        *,
        stall_warning: float = 5.0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.command = command
        self.name = f"--exec {command!r}"
        self.processes = max(1, processes)
        self.stall_warning = stall_warning
        self.warn = warn or _stderr
        self._warned = False
        self._idle: asyncio.Queue[_Child | None] | None = None
        self._children: list[_Child] = []

    def _pool(self) -> asyncio.Queue[_Child | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.processes):
                self._idle.put_nowait(None)  # a slot without a child yet: started on first use
        return self._idle

    async def _spawn(self) -> _Child:
        try:
            stdbuf = shutil.which("stdbuf")
            prefix = [stdbuf, "-oL"] if stdbuf else []
            process = await asyncio.create_subprocess_exec(
                *prefix,
                "/bin/sh",
                "-c",
                self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise HandlerError(f"cannot start the command: {error}", self.name) from None
        child = _Child(process)
        self._children.append(child)
        return child

    async def run(self, calls: Sequence[Call]) -> list[Outcome]:
        if not calls:
            return []
        pool = self._pool()
        child = await pool.get()
        try:
            if child is None or not child.alive:
                child = await self._spawn()
            return await self._exchange(child, calls)
        finally:
            pool.put_nowait(child if child is not None and child.alive else None)

    async def _exchange(self, child: _Child, calls: Sequence[Call]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(calls)
        sent: list[int] = []
        lines: list[bytes] = []
        for number, call in enumerate(calls):
            if not isinstance(call, Message):
                outcomes[number] = Failure(TypeError("--exec handles single messages"))
            elif b"\n" in call.payload:
                outcomes[number] = Failure(
                    ValueError("payload contains a newline; --exec sends one payload per line")
                )
            else:
                sent.append(number)
                lines.append(call.payload)
        if sent:
            answers = await self._talk(child, lines)
            for position, number in enumerate(sent):
                if position < len(answers):
                    answer = answers[position]
                    outcomes[number] = to_entry(answer or None, calls[number])
                else:
                    status = child.process.returncode
                    outcomes[number] = Failure(
                        HandlerError(
                            f"the command exited (status {status}) after answering "
                            f"{len(answers)} of {len(sent)} lines",
                            self.name,
                        )
                    )
        return outcomes

    async def _talk(self, child: _Child, lines: list[bytes]) -> list[bytes]:
        """Send the lines; return the answer lines (fewer if the child died)."""
        process = child.process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"\n".join(lines) + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            await process.wait()
            return []
        wanted = len(lines)
        buffer = child.buffer
        have = buffer.count(b"\n")
        chunks = [buffer]
        while have < wanted:
            data = await self._read(process.stdout)
            if not data:
                break
            chunks.append(data)
            have += data.count(b"\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await process.stdin.drain()
        text = b"".join(chunks)
        answers = text.split(b"\n")
        child.buffer = b"\n".join(answers[wanted:]) if len(answers) > wanted else b""
        answers = answers[:wanted] if have >= wanted else answers[:-1]
        if have < wanted:
            await process.wait()
        return [answer[:-1] if answer[-1:] == b"\r" else answer for answer in answers]

    async def _read(self, stdout: asyncio.StreamReader) -> bytes:
        if self._warned:
            return await stdout.read(_READ)
        try:
            return await asyncio.wait_for(stdout.read(_READ), self.stall_warning)
        except asyncio.TimeoutError:
            self._warned = True
            self.warn(
                f"{self.name}: no answer for {self.stall_warning:g} s; the command must write "
                "one line per input line and flush it (sed -u, grep --line-buffered, "
                "python -u, stdbuf -oL)"
            )
            return await stdout.read(_READ)

    async def close(self) -> None:
        """Close every child's stdin and wait for it (a stuck child is killed after 5 s)."""
        for child in self._children:
            process = child.process
            if process.stdin is not None:
                with contextlib.suppress(Exception):
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._children.clear()


def _stderr(text: str) -> None:
    sys.stderr.write(f"streamkit processor: {text}\n")
    sys.stderr.flush()
