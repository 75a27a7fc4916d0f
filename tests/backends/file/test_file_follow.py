"""Following a file from another process while it is appended to: every message exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from streamkit.backends.base import ProducerOptions
from streamkit.connect import connect

ROOT = Path(__file__).resolve().parents[2]

FOLLOWER = """
import asyncio, sys
from streamkit.connect import connect

async def main(path, count):
    async with connect("file://" + path) as streamer:
        consumer = await streamer.consumer(("n",), follow=True)
        seen = 0
        while seen < count:
            batch = await consumer.next_batch(64)
            sys.stdout.write("".join(m.payload.decode() + "\\n" for m in batch))
            sys.stdout.flush()
            seen += len(batch)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def append(path: Path, start: int, stop: int, step: int) -> None:
    """One writer session: batches with pauses, then a clean close (EOS)."""
    async with connect(f"file://{path}") as streamer:
        producer = await streamer.producer("n", ProducerOptions(beacon_interval=1024))
        for i in range(start, stop, step):
            await producer.send_many([b"m%d" % j for j in range(i, min(i + step, stop))])
            await asyncio.sleep(0.005)
        await producer.close()


def test_follower_in_another_process_gets_every_message_once(tmp_path: Path) -> None:
    path = tmp_path / "follow.ss"
    asyncio.run(append(path, 0, 10, 10))
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, str(path), "900"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(0.3)
        # Three writer sessions: each resumes on top of the previous one's EOS, splicing frames
        # across 1 KiB beacons, while the follower reads.
        asyncio.run(append(path, 10, 300, 29))
        asyncio.run(append(path, 300, 600, 50))
        asyncio.run(append(path, 600, 900, 7))
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err.decode()
    assert out.decode().split() == [f"m{i}" for i in range(900)]
