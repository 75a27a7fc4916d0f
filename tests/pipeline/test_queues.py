"""BoundedQueue: backpressure, close-and-drain, cancellation safety; Window accounting."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.pipeline.flow import Window
from streamkit.pipeline.queues import BoundedQueue, QueueClosed


def test_put_waits_when_full_and_close_drains() -> None:
    async def main() -> list[object]:
        queue: BoundedQueue[int] = BoundedQueue(2)
        await queue.put(1)
        await queue.put(2)
        blocked = asyncio.create_task(queue.put(3))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        assert queue.statistics().waiting_putters == 1
        assert await queue.get() == 1
        await asyncio.wait_for(blocked, 1)
        queue.close()
        got: list[object] = [await queue.get(), await queue.get()]
        with pytest.raises(QueueClosed):
            await queue.get()
        return got

    assert asyncio.run(main()) == [2, 3]


def test_close_wakes_waiting_getter() -> None:
    async def main() -> None:
        queue: BoundedQueue[int] = BoundedQueue(1)
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.close()
        with pytest.raises(QueueClosed):
            await getter

    asyncio.run(main())


def test_cancelled_getter_passes_its_wakeup_on() -> None:
    async def main() -> int:
        queue: BoundedQueue[int] = BoundedQueue(1)
        first = asyncio.create_task(queue.get())
        second = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        await queue.put(5)  # wakes `first` ...
        first.cancel()  # ... which is cancelled before it runs
        return await asyncio.wait_for(second, 1)

    assert asyncio.run(main()) == 5


def test_window_blocks_and_reports_starvation() -> None:
    async def main() -> None:
        window = Window(2)
        await window.acquire()
        await window.acquire()
        assert window.in_flight == 2 and not window.starved
        waiting = asyncio.create_task(window.acquire())
        await asyncio.sleep(0)
        assert window.starved and not waiting.done()
        window.release()
        await asyncio.wait_for(waiting, 1)
        assert not window.starved and window.in_flight == 2

    asyncio.run(main())
