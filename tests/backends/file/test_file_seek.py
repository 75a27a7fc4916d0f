"""Seeking in a 200 MB file reads a few beacons and about one interval, never the file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from streamkit.backends.file.streamer import FileConsumer
from streamkit.connect import connect
from streamkit.formats.ss import SsEncoder

BIG = 64 * 1024
START = 1_700_000_000_000
FRAMES = 3600  # of ~64 KiB: about 212 MB; the small stream interleaves every 10th frame


def timestamp(i: int) -> int:
    return START + 1000 * i


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built with the encoder in 6 MB pieces: a few seconds, once per session."""
    path = tmp_path_factory.mktemp("seek") / "big.ss"
    payloads = [os.urandom(BIG) for _ in range(4)]
    encoder = SsEncoder()  # 1 MiB beacons
    with open(path, "wb") as f:
        f.write(encoder.header(path.name, START))
        for first in range(0, FRAMES, 100):
            frames = []
            for i in range(first, min(first + 100, FRAMES)):
                if i % 10 == 0:
                    frames.append(("small", 0, i // 10 + 1, timestamp(i), b"tick %d" % i))
                else:
                    frames.append(("big", 0, i + 1, timestamp(i), payloads[i % 4]))
            f.write(encoder.encode(frames))
        f.write(encoder.eos(timestamp(FRAMES)))
    assert path.stat().st_size > 200_000_000
    return path


async def first_after(path: Path, keys: tuple[str, ...], **options: object) -> tuple[int, int]:
    async with connect(f"file://{path}") as streamer:
        consumer = await streamer.consumer(keys, **options)
        assert isinstance(consumer, FileConsumer)
        batch = await consumer.next_batch(1)
        return batch[0].timestamp, consumer.bytes_read


MiB = 1 << 20


@pytest.mark.parametrize("frame", [2471, 1205, 9, 3599])
def test_since_seek_reads_a_few_mb_and_lands_on_the_next_message(
    big_file: Path, frame: int
) -> None:
    since = timestamp(frame) - 500  # between frame - 1 and frame
    ts, bytes_read = asyncio.run(first_after(big_file, (), since=since))
    assert ts == timestamp(frame)
    assert bytes_read <= 4 * MiB


def test_seek_filters_by_stream(big_file: Path) -> None:
    since = timestamp(2471)
    ts, bytes_read = asyncio.run(first_after(big_file, ("small",), since=since))
    assert ts == timestamp(2480)  # the next frame of the small stream
    assert bytes_read <= 4 * MiB


def test_offset_seek_by_sequence(big_file: Path) -> None:
    async def go() -> tuple[int, int, int]:
        async with connect(f"file://{big_file}") as streamer:
            consumer = await streamer.consumer(("big",), offset=3002)
            assert isinstance(consumer, FileConsumer)
            m = (await consumer.next_batch(1))[0]
            return m.seq, m.timestamp, consumer.bytes_read

    seq, ts, bytes_read = asyncio.run(go())
    assert (seq, ts) == (3002, timestamp(3001))
    assert bytes_read <= 4 * MiB
