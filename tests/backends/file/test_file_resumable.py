"""Resumable file consumers: ``--mode resumable --group G`` on ``file://`` remembers its position.

Library cases (groups, offsets, refusals, positions that no longer fit the file) and CLI cases
(a relay killed with SIGKILL mid-stream and restarted, to a file and to stdout; ``--follow``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamkit.backends.base import ProducerOptions
from streamkit.backends.file.reader import SsFileReader
from streamkit.backends.file.stats import FileStatSource
from streamkit.connect import connect
from streamkit.errors import BackendError, DataError, EndOfStream, FileFormatError, UsageError
from streamkit.message import Message
from streamkit.uri import parse_stream_uri

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def body() -> T:
        return await factory()

    return asyncio.run(body())


def numbered(prefix: str, n: int, start: int = 0) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(start, start + n)]


async def write(path: Path, key: str, payloads: list[bytes]) -> None:
    async with connect(f"file://{path}") as s:
        producer = await s.producer(key)
        await producer.send_many(payloads)
        await producer.close()


async def take(
    path: Path, keys: tuple[str, ...], n: int | None, commit: bool = True, **options: Any
) -> list[bytes]:
    """Read up to n messages (all when None) as one group member, committing what it read."""
    got: list[Message] = []
    async with connect(f"file://{path}") as s:
        consumer = await s.consumer(list(keys), **{"mode": "resumable", **options})
        try:
            while n is None or len(got) < n:
                want = 1000 if n is None else n - len(got)
                try:
                    batch = await asyncio.wait_for(consumer.next_batch(want), 5)
                except EndOfStream:
                    break
                got.extend(batch)
                if commit:
                    await consumer.commit(batch)
        finally:
            await consumer.close()
    return [m.payload for m in got]


def position(path: Path, group: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(f"{path}.{group}.pos").read_text())
    return doc


def file_payloads(path: Path) -> list[bytes]:
    """Every complete message in a file, as a reader sees it (a torn last frame left out)."""
    reader = SsFileReader(str(path))
    out: list[bytes] = []
    try:
        while True:
            try:
                items = reader.read_items()
            except FileFormatError:
                break
            if not items:
                break
            out.extend(m.payload for m in items if isinstance(m, Message) and m.stream_key == "t")
    finally:
        reader.close()
    return out


def cli(*args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(
        b"[2026-11-23T07:%02d:%02d.%03d | t | %d | 0] m%d\n"
        % (i // 60000, i // 1000 % 60, i % 1000, i + 1, i)
        for i in range(start, start + n)
    )


# ---- the library ----------------------------------------------------------------------------


def test_a_group_continues_after_its_commit_and_ignores_offset_then(tmp_path: Path) -> None:
    path = tmp_path / "r.ss"
    run(lambda: write(path, "t", numbered("a", 10)))
    first = run(lambda: take(path, ("t",), 4, group="g", offset=2))
    assert first == numbered("a", 4, start=1)  # --offset places a group with no position (seq 2)
    doc = position(path, "g")
    assert doc["streams"] == [["t", 0, 5]] and doc["keys"] == ["t"]
    assert not Path(f"{path}.g.pos.tmp").exists()
    again = run(lambda: take(path, ("t",), None, group="g", offset="start", since=0))
    assert again == numbered("a", 5, start=5)  # a committed group ignores --offset/--since
    assert run(lambda: take(path, ("t",), None, group="g")) == []


def test_positions_between_beacons_and_split_frames_resume_exactly(tmp_path: Path) -> None:
    """Small beacons, frames that span them: a group that reads a few messages per run and
    commits each time gets every message once, whatever offset each run ends at."""
    path = tmp_path / "b.ss"
    want = [bytes([65 + i % 26]) * (1 + (i * 37) % 400) for i in range(300)]

    async def make() -> None:
        async with connect(f"file://{path}") as s:
            producer = await s.producer("t", ProducerOptions(beacon_interval=256))
            for start in range(0, 300, 7):
                await producer.send_many(want[start : start + 7])
            await producer.close()

    run(make)
    got: list[bytes] = []
    runs = 0
    while len(got) < len(want) and runs < 400:
        runs += 1
        n = 1 + runs % 5
        part = run(lambda: take(path, ("t",), n, group="g"))  # noqa: B023 - run() awaits it now
        got.extend(part)
    assert got == want
    assert run(lambda: take(path, ("t",), None, group="g")) == []


async def relay_run(source: Path, out: Path, batches: int | None, commit_last: bool) -> int:
    """A relay of group g from source to out, in process: ``batches`` batches of 4 (None: to
    the end), each written then committed — the last one not committed when ``commit_last`` is
    False (a kill between the output write and the commit). Returns ``already_written``."""
    async with connect(f"file://{source}") as src, connect(f"file://{out}") as dst:
        consumer = await src.consumer("t", mode="resumable", group="g")
        producer = await dst.producer("t")
        done = 0
        while batches is None or done < batches:
            try:
                batch = await consumer.next_batch(4)
            except EndOfStream:
                break
            await producer.send_many(batch)
            await producer.flush()
            done += 1
            if commit_last or batches is None or done < batches:
                await consumer.commit(batch)
        skipped = int(getattr(consumer, "already_written", 0))
        await consumer.close()
        await producer.close()
        return skipped


def test_a_restart_into_the_same_file_does_not_write_the_uncommitted_batch_twice(
    tmp_path: Path,
) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    run(lambda: write(source, "t", numbered("a", 20)))
    assert run(lambda: relay_run(source, out, 3, commit_last=False)) == 0
    held, done = len(file_payloads(out)), committed(source)
    assert 0 < done < held < 20  # the last batch written, not committed
    assert run(lambda: relay_run(source, out, None, commit_last=True)) == held - done
    assert file_payloads(out) == numbered("a", 20)
    assert committed(source) == 20


def test_a_restart_into_another_output_delivers_the_uncommitted_batch_again(
    tmp_path: Path,
) -> None:
    source, out, other = tmp_path / "in.ss", tmp_path / "out.ss", tmp_path / "other.ss"
    run(lambda: write(source, "t", numbered("a", 20)))
    run(lambda: relay_run(source, out, 3, commit_last=False))
    done = committed(source)
    assert done < len(file_payloads(out))
    assert run(lambda: relay_run(source, other, None, commit_last=True)) == 0
    assert file_payloads(other) == numbered("a", 20 - done, start=done)


def test_a_replaced_output_is_not_trusted_even_with_the_same_messages(tmp_path: Path) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    run(lambda: write(source, "t", numbered("a", 20)))
    run(lambda: relay_run(source, out, 3, commit_last=False))
    held, done = len(file_payloads(out)), committed(source)
    assert done < held

    async def copy_of_the_output() -> None:  # same messages, timestamps and layout; new header
        async with connect(f"file://{source}") as s:
            consumer = await s.consumer("t", follow=False)
            original = [m async for batch in consumer.batches() for m in batch][:held]
            await consumer.close()
        out.unlink()
        time.sleep(0.002)
        async with connect(f"file://{out}") as s:
            producer = await s.producer("t", ProducerOptions(end_with_eos=False))
            await producer.send_many(original)
            await producer.close()

    run(copy_of_the_output)
    assert run(lambda: relay_run(source, out, None, commit_last=True)) == 0
    assert file_payloads(out) == [*numbered("a", held), *numbered("a", 20 - done, start=done)]


def test_an_output_that_holds_other_messages_after_the_commit_is_not_trusted(
    tmp_path: Path,
) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    run(lambda: write(source, "t", numbered("a", 20)))
    run(lambda: relay_run(source, out, 2, commit_last=True))
    done = committed(source)
    run(lambda: write(out, "t", [b"someone else"]))  # appended by another writer
    assert run(lambda: relay_run(source, out, None, commit_last=True)) == 0
    rest = numbered("a", 20 - done, start=done)
    assert file_payloads(out) == [*numbered("a", done), b"someone else", *rest]


def test_groups_on_one_file_are_independent(tmp_path: Path) -> None:
    path = tmp_path / "g.ss"
    run(lambda: write(path, "t", numbered("a", 6)))
    assert run(lambda: take(path, ("t",), 2, group="one")) == numbered("a", 2)
    assert run(lambda: take(path, ("t",), None, group="two")) == numbered("a", 6)
    assert run(lambda: take(path, ("t",), None, group="one")) == numbered("a", 4, start=2)
    run(lambda: write(path, "t", numbered("b", 2)))  # appended on top of the EOS
    assert run(lambda: take(path, ("t",), None, group="two")) == numbered("b", 2)
    assert run(lambda: take(path, ("t",), None, group="one")) == numbered("b", 2)


def test_nothing_committed_means_nothing_remembered(tmp_path: Path) -> None:
    path = tmp_path / "n.ss"
    run(lambda: write(path, "t", numbered("a", 3)))
    assert run(lambda: take(path, ("t",), 2, commit=False, group="g")) == numbered("a", 2)
    assert not Path(f"{path}.g.pos").exists()
    assert run(lambda: take(path, ("t",), None, group="g")) == numbered("a", 3)


def test_a_partial_commit_resumes_right_after_its_last_message(tmp_path: Path) -> None:
    path = tmp_path / "p.ss"
    run(lambda: write(path, "t", numbered("a", 10)))

    async def commit_part() -> None:
        async with connect(f"file://{path}") as s:
            consumer = await s.consumer("t", mode="resumable", group="g")
            batch = await consumer.next_batch(1000)
            assert len(batch) == 10
            await consumer.commit(batch[:3])
            await consumer.commit(batch[:2])  # older than the position: changes nothing
            await consumer.close()

    run(commit_part)
    assert run(lambda: take(path, ("t",), None, group="g")) == numbered("a", 7, start=3)


def test_refusals(tmp_path: Path) -> None:
    path = tmp_path / "u.ss"
    run(lambda: write(path, "t", numbered("a", 2)))
    with pytest.raises(UsageError, match="load-balanced") as lb:
        run(lambda: take(path, ("t",), None, group="g", mode="load-balanced"))
    assert lb.value.where == "--mode"
    with pytest.raises(UsageError, match="cannot name a position file"):
        run(lambda: take(path, ("t",), None, group="../x"))
    run(lambda: take(path, ("t",), 1, group="g"))
    with pytest.raises(UsageError, match="committed reading t, not every stream"):
        run(lambda: take(path, (), None, group="g"))


def test_a_group_has_one_live_consumer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "l.ss"
    run(lambda: write(path, "t", numbered("a", 3)))

    async def body() -> None:
        async with connect(f"file://{path}") as s:
            first = await s.consumer("t", mode="resumable", group="g")
            with pytest.raises(BackendError, match="in use by another consumer") as busy:
                await s.consumer("t", mode="resumable", group="g")
            assert busy.value.where == f"{path}.g.pos.lock"
            other = await s.consumer("t", mode="resumable", group="h")  # another group: fine
            await other.close()
            await first.close()
            second = await s.consumer("t", mode="resumable", group="g")
            assert len(await second.next_batch()) == 3
            await second.close()

    run(body)


def test_stat_lists_the_groups_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "s.ss"
    run(lambda: write(path, "t", numbered("a", 10)))
    run(lambda: take(path, ("t",), 4, group="slow"))
    run(lambda: take(path, ("t",), None, group="done"))

    async def look() -> dict[str, Any]:
        source = FileStatSource(parse_stream_uri(f"file://{path}/t"))
        report = await source.collect()
        return {g.name: g for g in report.stream("t").groups}

    groups = run(look)
    assert sorted(groups) == ["done", "slow"]
    assert groups["slow"].lag == 6 and groups["slow"].shards[0].committed == 5
    assert groups["done"].lag == 0 and groups["done"].state == "committed"
    assert groups["slow"].consumers == 0

    async def look_while_reading() -> int | None:
        async with connect(f"file://{path}") as s:
            consumer = await s.consumer("t", mode="resumable", group="slow")
            try:
                return (await look())["slow"].consumers
            finally:
                await consumer.close()

    assert run(look_while_reading) == 1
    truncate(path)
    groups = run(look)
    assert groups["slow"].state == "position no longer fits the file"
    assert groups["slow"].lag is None


def replace_file(path: Path) -> None:
    path.unlink()
    time.sleep(0.002)  # another creation time in the header
    run(lambda: write(path, "t", numbered("z", 10)))


def truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(200)


def rewrite_tail(path: Path) -> None:
    size = path.stat().st_size
    data = bytearray(path.read_bytes())
    data[size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (replace_file, "another header"),
        (truncate, "the file ends at 200"),
        (rewrite_tail, "changed"),
        (lambda p: p.unlink(), "does not exist"),
    ],
)
def test_a_position_that_no_longer_fits_is_an_error_naming_both(
    tmp_path: Path, damage: Callable[[Path], None], why: str
) -> None:
    path = tmp_path / "d.ss"
    run(lambda: write(path, "t", [b"x" * 40 for _ in range(20)]))
    run(lambda: take(path, ("t",), 10, group="g"))
    damage(path)
    pos = f"{path}.g.pos"
    with pytest.raises(DataError, match=why) as error:
        run(lambda: take(path, ("t",), None, group="g"))
    assert str(path) in str(error.value) and pos in str(error.value)
    done = cli("relay", "--input", f"file://{path}/t", "--mode", "resumable", "--group", "g")
    assert done.returncode == 3
    assert done.stdout == b""  # never a silent restart from 0
    message = done.stderr.decode().strip()
    assert "\n" not in message and pos in message and str(path) in message


def test_a_damaged_position_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "b.ss"
    run(lambda: write(path, "t", numbered("a", 2)))
    Path(f"{path}.g.pos").write_text("{not json")
    with pytest.raises(DataError, match="not a streamkit position file"):
        run(lambda: take(path, ("t",), None, group="g"))


# ---- the CLI --------------------------------------------------------------------------------

BATCH = 100


def relay_cmd(source: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamkit.cli.main",
        "relay",
        "--input",
        f"file://{source}/t",
        "--mode",
        "resumable",
        "--group",
        "g",
        "--batch-size",
        str(BATCH),
        *args,
    ]


def committed(source: Path) -> int:
    """Messages the group committed: its last seq (the input numbers them 1..N)."""
    try:
        streams = position(source, "g")["streams"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(streams[0][2]) if streams else 0


def kill_mid_stream(cmd: list[str], source: Path, at_least: int, **popen: Any) -> int:
    """Start the relay, SIGKILL it once it committed ``at_least`` more messages; its commit."""
    start = committed(source)
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, **popen)
    try:
        deadline = time.monotonic() + 60
        while committed(source) < start + at_least:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < deadline
            time.sleep(0.005)
        # a commit was just seen: land the kill anywhere in the next read-write-commit turn
        time.sleep(random.uniform(0, 0.005))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return committed(source)


def check_runs(
    final: list[bytes], expected: list[bytes], kills: list[tuple[int, int]], exact: bool = False
) -> int:
    """The output is each run's part: a run writes from where the group stood when it started
    up to what the output held at its kill, and the next run goes on from the last commit. So
    every message is there, and the only repeats are those written after the last commit before
    a kill: at most one batch each. Returns the number of repeats.

    ``exact``: the output is a ``.ss`` file the restarted relay writes again, so the messages
    the killed run wrote after its last commit are not delivered again (none twice)."""
    want: list[bytes] = []
    pointer = 0
    repeats = 0
    for held, commit in kills:
        reached = pointer + held - len(want)
        want.extend(expected[pointer:reached])
        assert 0 <= reached - commit <= BATCH, (reached, commit)
        repeats += reached - commit
        pointer = reached if exact else commit
    want.extend(expected[pointer:])
    assert final == want
    return repeats


N = 100_000


def test_relay_to_a_file_killed_mid_stream_resumes_without_loss(tmp_path: Path) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    done = cli("relay", "--output", f"file://{source}/t", stdin=lines(N))
    assert done.returncode == 0, done.stderr
    expected = [b"m%d" % i for i in range(N)]
    cmd = relay_cmd(source, "--output", f"file://{out}/t")
    kills = []
    for _ in range(3):
        commit = kill_mid_stream(cmd, source, 3 * BATCH)
        kills.append((len(file_payloads(out)), commit))
    assert kills[-1][1] < N  # really killed mid-stream
    last = subprocess.run(cmd, env=ENV, capture_output=True, timeout=120, check=False)
    assert last.returncode == 0, last.stderr
    assert committed(source) == N
    check_runs(file_payloads(out), expected, kills, exact=True)
    # a finished group relays nothing more
    again = subprocess.run(cmd, env=ENV, capture_output=True, timeout=60, check=False)
    assert again.returncode == 0 and file_payloads(out) == expected  # none lost, none twice


def test_relay_to_stdout_killed_mid_stream_resumes_without_loss(tmp_path: Path) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.txt"
    done = cli("relay", "--output", f"file://{source}/t", stdin=lines(N))
    assert done.returncode == 0, done.stderr
    expected = [b"m%d" % i for i in range(N)]
    cmd = relay_cmd(source, "-f", "%s\\n")
    kills = []
    with open(out, "ab") as sink:
        for _ in range(2):
            commit = kill_mid_stream(cmd, source, 3 * BATCH, stdout=sink)
            kills.append((len(out.read_bytes().splitlines()), commit))
        last = subprocess.run(cmd, env=ENV, stdout=sink, stderr=subprocess.PIPE, timeout=120)
    assert last.returncode == 0, last.stderr
    check_runs(out.read_bytes().splitlines(), expected, kills)


def test_count_and_until_commit_exactly_what_they_relayed(tmp_path: Path) -> None:
    source = tmp_path / "in.ss"
    assert cli("relay", "--output", f"file://{source}/t", stdin=lines(500)).returncode == 0
    first = cli(*relay_cmd(source, "--count", "150")[3:], "-f", "%s\\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [b"m%d" % i for i in range(150)]
    cut = cli(*relay_cmd(source, "--until", "2026-11-23T07:00:00.299")[3:], "-f", "%s\\n")
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout.split() == [b"m%d" % i for i in range(150, 300)]
    rest = cli(*relay_cmd(source)[3:], "-f", "%s\\n")
    assert rest.returncode == 0, rest.stderr
    assert rest.stdout.split() == [b"m%d" % i for i in range(300, 500)]


def test_follow_resumes_where_it_was_killed(tmp_path: Path) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    assert cli("relay", "--output", f"file://{source}/t", stdin=lines(1000)).returncode == 0
    cmd = relay_cmd(source, "--follow", "--output", f"file://{out}/t")
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while committed(source) < 1000:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        # tail -f: a writer appends while the follower waits
        more = cli("relay", "--output", f"file://{source}/t", stdin=lines(500, start=1000))
        assert more.returncode == 0, more.stderr
        while committed(source) < 1500:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    held = len(file_payloads(out))
    # appended while nobody follows; the restart picks up exactly there, still following
    assert (
        cli("relay", "--output", f"file://{source}/t", stdin=lines(500, start=1500)).returncode == 0
    )
    again = subprocess.run(
        [*cmd, "--count", "500"], env=ENV, capture_output=True, timeout=60, check=False
    )
    assert again.returncode == 0, again.stderr
    check_runs(file_payloads(out), [b"m%d" % i for i in range(2000)], [(held, 1500)], exact=True)


def test_the_relay_says_how_many_messages_the_output_already_held(tmp_path: Path) -> None:
    source, out = tmp_path / "in.ss", tmp_path / "out.ss"
    run(lambda: write(source, "t", numbered("a", 20)))
    run(lambda: relay_run(source, out, 3, commit_last=False))
    held, done = len(file_payloads(out)), committed(source)
    result = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "relay", "--input", f"file://{source}/t",
         "--output", f"file://{out}/t", "--mode", "resumable", "--group", "g", "-e"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert file_payloads(out) == numbered("a", 20)
    said = result.stderr.decode()
    assert f"{20 - held} messages relayed" in said
    assert f"{held - done} left out because the output already holds them" in said
