"""Shared tools of the fault suite: counting, running the CLI fast, and reading ``.ss`` files.

Every fault test ends in the same four numbers — messages in, out, lost, duplicated — plus the
ones a test can add (invented: delivered but never sent). ``tally`` computes them from what went
in and what came out, and ``record`` adds them to the suite's figures, which
``tests/faults/conftest.py`` prints at the end of the run (and writes as JSON when
``STREAMKIT_FAULT_FIGURES=PATH`` is set) so that docs/reliability.md quotes measured numbers.

``Cli`` runs ``streamkit ARGS`` as a real child process, but forked from a warm interpreter that
has already imported streamkit: the corrupt-file matrix runs hundreds of commands and a fresh
interpreter costs ~0.25 s each, a fork ~20 ms. The child has its own stdin/stdout/stderr files,
its own exit code and its own event loop, and an exception that escapes ``main`` is printed as
Python prints it ("Traceback ..."), so "no traceback" means what it says. Tests that send signals
or need a pipe start plain subprocesses (``spawn``) instead.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STREAMKIT = [PYTHON, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# --------------------------------------------------------------------------- counting


@dataclass
class Tally:
    """What a fault did to a stream of distinct messages."""

    sent: int
    received: int
    lost: int
    duplicated: int
    invented: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def tally(sent: Iterable[Hashable], received: Iterable[Hashable]) -> Tally:
    """``sent`` are distinct messages; ``received`` what came out (any order, maybe repeated)."""
    sent_set = set(sent)
    got = Counter(received)
    return Tally(
        sent=len(sent_set),
        received=sum(got.values()),
        lost=len(sent_set - got.keys()),
        duplicated=sum(n - 1 for item, n in got.items() if item in sent_set and n > 1),
        invented=sum(n for item, n in got.items() if item not in sent_set),
    )


FIGURES: dict[str, Counter[str]] = {}
"""section → summed counts over every case of that section (printed by conftest.py)."""

_FIGURES_LOCK = threading.Lock()


def record(section: str, **counts: int) -> None:
    """Add one case's numbers to ``section`` (``cases`` counts the calls)."""
    with _FIGURES_LOCK:
        total = FIGURES.setdefault(section, Counter())
        total["cases"] += 1
        total.update({k: v for k, v in counts.items()})


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Result:
    code: int | None
    """The exit code; None if the command hung and was killed after its timeout."""
    stdout: str
    stderr: str
    seconds: float

    @property
    def hung(self) -> bool:
        return self.code is None

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


_DRIVER = r"""
import json, os, signal, sys, time, traceback
import streamkit.cli.main as cli_main
for name in ("clock", "relay", "decode", "verify", "processor"):
    __import__("streamkit.cli." + name)
sys.stdout.flush()
for line in sys.stdin:
    job = json.loads(line)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.chdir(job["cwd"])
            fd = os.open(job["stdin"] or os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.dup2(os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.dup2(os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            sys.stdin = open(0, closefd=False)
            cli_main.main(job["args"])
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    deadline = started + job["timeout"]
    status = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
            break
        time.sleep(0.002)
    code = None if status is None else os.waitstatus_to_exitcode(status)
    print(json.dumps({"code": code, "seconds": time.monotonic() - started}), flush=True)
"""


class Cli:
    """``streamkit ARGS`` in forked children of one warm interpreter (see the module doc)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [PYTHON, "-c", _DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=ENV,
            text=True,
        )

    def run(
        self, *args: str, stdin: Path | None = None, cwd: Path | None = None, timeout: float = 20
    ) -> Result:
        with self._lock:
            self._n += 1
            out = self.workdir / f"{self._n}.out"
            err = self.workdir / f"{self._n}.err"
            job = {
                "args": list(args),
                "cwd": str(cwd or self.workdir),
                "stdin": str(stdin) if stdin else None,
                "out": str(out),
                "err": str(err),
                "timeout": timeout,
            }
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
            reply = json.loads(self._proc.stdout.readline())
        result = Result(
            reply["code"],
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
            reply["seconds"],
        )
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(10)


def run(
    *args: str, stdin: bytes | None = b"", timeout: float = 30, cwd: Path | None = None
) -> Result:
    """``streamkit ARGS`` in a fresh interpreter (a hang is killed and reported as code None)."""
    started = time.monotonic()
    proc = spawn(*args, stdin=subprocess.PIPE, cwd=cwd)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code = None
    return Result(code, out.decode(errors="replace"), err.decode(errors="replace"),
                  time.monotonic() - started)  # fmt: skip


def spawn(
    *args: str,
    stdin: IO[bytes] | int | None = None,
    stdout: IO[bytes] | int | None = subprocess.PIPE,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A streamkit command running beside the test."""
    return subprocess.Popen(
        [*STREAMKIT, *args], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=ENV, cwd=cwd
    )


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20) -> float:
    """Send ``sig`` and wait; the seconds it took to exit (raises if it did not)."""
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout)
    return time.monotonic() - started


# --------------------------------------------------------------------------- .ss files


@dataclass
class Frame:
    """One frame of a ``.ss`` file: where its bytes start and end (beacons it spans included)."""

    start: int
    end: int
    key: str
    eos: bool
    payload: list[tuple[int, int]] = field(default_factory=list)
    """Where the payload's bytes are: (start, end) pieces, more than one if a beacon splits it."""


@dataclass
class Layout:
    """The frames and beacons of an intact file, found by a walker written from the spec alone
    (independent of streamkit's decoder, so a decoder bug cannot hide in the expectations)."""

    interval: int
    frames: list[Frame] = field(default_factory=list)
    beacons: list[tuple[int, int]] = field(default_factory=list)

    @property
    def messages(self) -> list[Frame]:
        return [f for f in self.frames if not f.eos]

    def intact_before(self, offset: int) -> int:
        """Messages whose every byte lies before ``offset``: what must survive damage there."""
        return sum(1 for f in self.messages if f.end <= offset)

    def frame_at(self, offset: int) -> int | None:
        for number, f in enumerate(self.messages):
            if f.start <= offset < f.end:
                return number
        return None


def layout(data: bytes) -> Layout:
    name_len = data[3]
    interval = struct.unpack_from(">I", data, 4 + name_len + 8)[0]
    out = Layout(interval)
    pos = 128

    def skip_beacon() -> None:
        nonlocal pos
        if pos % interval == 0 and pos < len(data):
            start = pos
            count = data[pos + 5]
            p = pos + 6
            for _ in range(count):
                p += 1 + data[p] + 26
            pos = p + 1
            assert data[pos - 1] == 0x0D, f"beacon at {start} has no trailer"
            out.beacons.append((start, pos))

    def take(n: int, pieces: list[tuple[int, int]] | None = None) -> bytes:
        nonlocal pos
        parts = []
        while n:
            skip_beacon()
            boundary = (pos // interval + 1) * interval
            chunk = min(n, boundary - pos)
            parts.append(data[pos : pos + chunk])
            if pieces is not None:
                pieces.append((pos, pos + chunk))
            pos += chunk
            n -= chunk
        return b"".join(parts)

    while True:
        skip_beacon()
        if pos >= len(data):
            break
        start = pos
        key_len = take(1)[0]
        head = take(key_len + 28)
        key = head[:key_len].decode()
        size = struct.unpack_from(">I", head, key_len + 24)[0]
        pieces: list[tuple[int, int]] = []
        payload = take(size, pieces)
        trailer = take(3)
        assert trailer[-1] == 0x0D, f"frame at {start} has no trailer"
        eos = key == "SEA_STREAMER_INTERNAL" and payload == b"EOS"
        out.frames.append(Frame(start, pos, key, eos, pieces))
        if eos:
            break
    return out


def message_lines(decoded: str) -> list[str]:
    """The message lines of ``decode`` output (header and beacon comments dropped, EOS too)."""
    return [
        line
        for line in decoded.splitlines()
        if line.startswith("[") and "| SEA_STREAMER_INTERNAL |" not in line
    ]


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def write_sample(path: Path, count: int = 600, seed: int = 1, beacon_interval: int = 1024) -> None:
    """A file like real ones: two streams of two shards each, payloads of 10..210 bytes, a beacon
    every ``beacon_interval`` bytes (so beacons sit between frames and inside them), an EOS."""
    import asyncio
    import random

    import streamkit
    from streamkit.backends.base import ProducerOptions
    from streamkit.message import Message

    rnd = random.Random(seed)
    seqs: Counter[tuple[str, int]] = Counter()
    messages = []
    for n in range(count):
        key, shard = rnd.choice("ab"), rnd.choice((0, 1))
        seqs[key, shard] += 1
        payload = b'{"n": %d, "pad": "%s"}' % (n, b"x" * rnd.randrange(200))
        messages.append(Message(key, shard, seqs[key, shard], 1795417200000 + 7 * n, payload))

    async def main() -> None:
        async with streamkit.connect(f"file://{path}") as streamer:
            producer = await streamer.producer(
                None, ProducerOptions(beacon_interval=beacon_interval)
            )
            for batch in chunks(messages, 50):
                await producer.send_many(batch)
            await producer.close()

    asyncio.run(main())


def fill(url: str, key: str, count: int, prefix: bytes = b"m", timeout: float = 60) -> list[bytes]:
    """Write ``count`` distinct payloads (``PREFIX-N``) to ``key`` through the library, in
    batches; returns them, the "sent" side of a tally."""
    import asyncio

    from streamkit import connect

    items = [b"%s-%d" % (prefix, n) for n in range(count)]

    async def main() -> None:
        async with connect(url) as streamer:
            producer = await streamer.producer(key)
            for start in range(0, count, 10_000):
                await producer.send_many(items[start : start + 10_000])
            await producer.close()

    asyncio.run(asyncio.wait_for(main(), timeout))
    return items
