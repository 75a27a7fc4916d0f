#!/usr/bin/env python3
"""Benchmark the .ss file paths side by side with ``cat`` of the same bytes, in one run.

    python scripts/benches/file.py [--messages 1000000] [--size 100] [--seek-mb 200]

Prints a markdown table: relay stdio→file, decode to /dev/null, relay file→stdio and ``cat``
(msgs/s, MB/s), each with the C codec and with ``STREAMKIT_PURE_PYTHON=1``, next to a Python
pass-through loop over the same lines and SeaStreamer's ``file-ss-decode`` on the same file
(``--seastreamer DIR``; skipped when absent); seek latency and bytes read on a large file next
to a full scan; CRC-16 in C (fastcrc, streamkit's own) next to a pure-Python table loop. The
CLI paths run as subprocesses
(``python -m streamkit.cli.main ...``); while the CLI has no ``relay`` yet, an equivalent
in-process relay over the same library calls stands in (marked in the table).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamkit.formats.crc16 import crc16, crc16_python  # noqa: E402
from streamkit.formats.ss import SsEncoder  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("STREAMKIT_PURE_PYTHON", None)
PURE_ENV = {**ENV, "STREAMKIT_PURE_PYTHON": "1"}
DEFAULT_SEASTREAMER = ROOT.parent / "shared" / "tools" / "seastreamer"
PASS_THROUGH = """
import sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    out.write(line)
"""


def has_cli_command(name: str) -> bool:
    probe = subprocess.run(
        [PY, "-m", "streamkit.cli.main", name, "--help"],
        capture_output=True,
        env=ENV,
        check=False,
    )
    return probe.returncode == 0


def make_lines(path: Path, count: int, size: int) -> None:
    """Line-format input: ``[ts | bench | seq | 0] payload`` with ~``size``-byte payloads."""
    stamp = "2026-11-23T07:00:00"
    filler = "x" * max(0, size - 30)
    with open(path, "w") as f:
        for start in range(0, count, 10_000):
            f.write(
                "".join(
                    f"[{stamp}.{i % 1000:03d} | bench | {i + 1} | 0] "
                    f'{{"n":{i:09d},"f":"{filler}"}}\n'
                    for i in range(start, min(start + 10_000, count))
                )
            )


def timed(
    cmd: list[str],
    stdin: Path | None = None,
    stdout: Path | None = None,
    env: dict[str, str] | None = None,
) -> float:
    with open(stdin or os.devnull, "rb") as fin, open(stdout or os.devnull, "wb") as fout:
        start = time.perf_counter()
        done = subprocess.run(
            cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, env=env or ENV, check=False
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


MINI_RELAY = """
import asyncio, sys
from streamkit.connect import connect
from streamkit.uri import parse_stream_uri
async def main(src, dst):
    a, b = parse_stream_uri(src), parse_stream_uri(dst)
    async with connect(a) as i, connect(b) as o:
        consumer = await i.consumer(a.keys)
        producer = await o.producer(b.key)
        async for batch in consumer.batches(4096):
            await producer.send_many(batch)
        await producer.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def relay_cmd(src: str, dst: str, cli: bool) -> list[str]:
    if cli:
        return [PY, "-m", "streamkit.cli.main", "relay", "--input", src, "--output", dst]
    return [PY, "-c", MINI_RELAY, src, dst]


def decode_cmd(path: Path, cli: bool) -> list[str]:
    if cli:
        return [PY, "-m", "streamkit.cli.main", "decode", str(path)]
    return [PY, "-c", "from streamkit.cli.decode import decode; decode()", str(path)]


def big_file(path: Path, megabytes: int) -> tuple[int, int]:
    """A file of ~``megabytes`` MB, 1 MiB beacons, 4 KiB payloads; returns (frames, t0)."""
    payload = os.urandom(4096)
    encoder = SsEncoder()
    start = 1_700_000_000_000
    frames = megabytes * 1_000_000 // (4096 + 37)
    with open(path, "wb") as f:
        f.write(encoder.header(path.name, start))
        for first in range(0, frames, 2000):
            f.write(
                encoder.encode(
                    ("big", 0, i + 1, start + i, payload)
                    for i in range(first, min(first + 2000, frames))
                )
            )
        f.write(encoder.eos(start + frames))
    return frames, start


async def seek_and_scan(path: Path, since: int) -> tuple[float, int, float, int, int]:
    from streamkit.backends.file.streamer import FileConsumer
    from streamkit.connect import connect

    async with connect(f"file://{path}") as streamer:
        t = time.perf_counter()
        consumer = await streamer.consumer(("big",), since=since)
        assert isinstance(consumer, FileConsumer)
        first = (await consumer.next_batch(1))[0]
        seek_time = time.perf_counter() - t
        assert first.timestamp == since, (first.timestamp, since)
        seek_bytes = consumer.bytes_read
        await consumer.close()
        t = time.perf_counter()
        consumer = await streamer.consumer(("big",))
        assert isinstance(consumer, FileConsumer)
        count = 0
        async for batch in consumer.batches(4096):
            count += len(batch)
        scan_time = time.perf_counter() - t
        return seek_time, seek_bytes, scan_time, consumer.bytes_read, count


def crc_rates(size: int) -> tuple[float, float, float]:
    payload = os.urandom(size)
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        crc16(payload)
    fast = n / (time.perf_counter() - t)
    m = 5_000
    t = time.perf_counter()
    for _ in range(m):
        crc16_python(payload)
    slow = m / (time.perf_counter() - t)
    own = 0.0
    try:
        from streamkit.formats import _speedups
    except ImportError:
        pass
    else:
        t = time.perf_counter()
        for _ in range(n):
            _speedups.crc16(payload)
        own = n / (time.perf_counter() - t)
    return fast, slow, own


def row(name: str, count: int, nbytes: int, seconds: float, cat: float | None) -> str:
    ratio = f"{seconds / cat:.1f}x cat" if cat else ""
    return (
        f"| {name} | {count / seconds:,.0f} | {nbytes / seconds / 1e6:,.1f} | "
        f"{seconds:.2f} s | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--seek-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; the best counts")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--seastreamer",
        type=Path,
        default=Path(os.environ.get("STREAMKIT_SEASTREAMER", DEFAULT_SEASTREAMER)),
        help="folder of SeaStreamer's tools (file-ss-decode); skipped when absent",
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="streamkit-bench-file-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.messages
    lines = work / "input.txt"
    ss = work / "out.ss"
    make_lines(lines, n, args.size)
    ss.unlink(missing_ok=True)
    cli_relay = has_cli_command("relay")
    cli_decode = has_cli_command("decode")
    how = "" if cli_relay else " (in-process relay: CLI has no relay yet)"

    def best(run: Callable[[], float]) -> float:
        """The fastest of --repeat runs: on a shared machine the slow runs measure neighbours."""
        return min(run() for _ in range(args.repeat))

    def write(env: dict[str, str] = ENV) -> float:
        ss.unlink(missing_ok=True)
        command = relay_cmd("stdio:///bench", f"file://{ss}/bench", cli_relay)
        return timed(command, stdin=lines, env=env)

    (work / "pass.py").write_text(PASS_THROUGH)
    t_cat_in = best(lambda: timed(["cat"], stdin=lines, stdout=work / "cat.txt"))
    t_pass = best(lambda: timed([PY, str(work / "pass.py")], stdin=lines, stdout=work / "cat.txt"))
    t_write_pure = best(lambda: write(PURE_ENV))
    t_write = best(write)
    size = ss.stat().st_size
    t_cat_ss = best(lambda: timed(["cat", str(ss)]))
    t_decode = best(lambda: timed(decode_cmd(ss, cli_decode)))
    t_decode_pure = best(lambda: timed(decode_cmd(ss, cli_decode), env=PURE_ENV))
    sea_decode = args.seastreamer / "file-ss-decode"
    have_sea = os.access(sea_decode, os.X_OK)
    t_sea = best(lambda: timed([str(sea_decode), "--file", str(ss)])) if have_sea else None
    t_read = best(lambda: timed(relay_cmd(f"file://{ss}/bench", "stdio:///bench", cli_relay)))

    cores = os.cpu_count()
    print(
        f"\n### .ss file paths — {n:,} messages, payload ~{args.size} B, {cores} cores, "
        f"best of {args.repeat}\n"
    )
    print("| path | msgs/s | MB/s | time | vs cat |")
    print("|---|---:|---:|---:|---|")
    print(row("cat lines > file", n, lines.stat().st_size, t_cat_in, None))
    print(row("python pass-through loop lines > file", n, lines.stat().st_size, t_pass, t_cat_in))
    print(row(f"relay stdio → file{how}", n, lines.stat().st_size, t_write, t_cat_in))
    print(row("relay stdio → file, pure Python", n, lines.stat().st_size, t_write_pure, t_cat_in))
    print(row("cat file.ss > /dev/null", n, size, t_cat_ss, None))
    print(row("decode file.ss > /dev/null", n, size, t_decode, t_cat_ss))
    print(row("decode file.ss > /dev/null, pure Python", n, size, t_decode_pure, t_cat_ss))
    if t_sea is not None:
        print(row("SeaStreamer file-ss-decode --file file.ss", n, size, t_sea, t_cat_ss))
    print(row(f"relay file → stdio > /dev/null{how}", n, size, t_read, t_cat_ss))
    print("\n| ratio (same run) | value |")
    print("|---|---:|")
    print(f"| relay stdio → file ÷ pass-through loop (target ≥ 0.5) | **{t_pass / t_write:.2f}** |")
    print(f"| pure-Python relay stdio → file ÷ C | **{t_write / t_write_pure:.2f}** |")
    if t_sea is not None:
        print(f"| decode ÷ SeaStreamer file-ss-decode (target ≥ 4) | **{t_sea / t_decode:.2f}** |")
    else:
        print(f"\n(SeaStreamer's file-ss-decode not found in {args.seastreamer}: skipped)")

    big = work / "big.ss"
    frames, start = big_file(big, args.seek_mb)
    target = start + frames * 2 // 3
    seek_t, seek_b, scan_t, scan_b, count = asyncio.run(seek_and_scan(big, target))
    assert count == frames
    print(f"\n### seek on a {big.stat().st_size / 1e6:,.0f} MB file ({frames:,} frames)\n")
    print("| operation | time | bytes read |")
    print("|---|---:|---:|")
    print(f"| --since seek to the first message | {seek_t * 1000:.1f} ms | {seek_b:,} |")
    print(f"| full scan (every message) | {scan_t * 1000:.0f} ms | {scan_b:,} |")

    fast, slow, own = crc_rates(args.size)
    print(f"\n### CRC-16/CDMA2000 of a {args.size}-byte payload\n")
    print("| implementation | payloads/s | ratio |")
    print("|---|---:|---:|")
    print(f"| fastcrc (compiled, the pure codec's) | {fast:,.0f} | {fast / slow:.0f}x |")
    if own:
        print(f"| streamkit C codec, sliced by 8 | {own:,.0f} | {own / slow:.0f}x |")
    print(f"| pure-Python table loop | {slow:,.0f} | 1x |")
    if not args.workdir:
        for p in (lines, ss, big, work / "cat.txt", work / "pass.py"):
            p.unlink(missing_ok=True)
        work.rmdir()


if __name__ == "__main__":
    main()
