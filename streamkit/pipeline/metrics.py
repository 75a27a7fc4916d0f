"""Counters and latency percentiles of a running pipeline, cheap enough for the hot path.

Counts are plain integers bumped once per batch. Latency (read from the source → written to the
sink) is sampled once per source batch into a fixed window, so p50/p99 describe the recent past
and cost no per-message work.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Metrics", "Snapshot"]

_WINDOW = 2048


@dataclass(frozen=True)
class Snapshot:
    """A point-in-time copy of the metrics (what ``Pipeline.metrics()`` returns)."""

    messages_in: int
    messages_out: int
    dropped: int
    skipped: int
    retried: int
    dead_lettered: int
    failed: int
    in_flight_batches: int
    resequencer_depth: int
    queue_depths: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    def line(self) -> str:
        """The one-line summary ``--stats`` prints."""
        queues = " ".join(f"{name}={depth}" for name, depth in self.queue_depths.items())
        p50 = "-" if self.latency_p50_ms is None else f"{self.latency_p50_ms:.1f}ms"
        p99 = "-" if self.latency_p99_ms is None else f"{self.latency_p99_ms:.1f}ms"
        text = (
            f"in={self.messages_in} out={self.messages_out} dropped={self.dropped} "
            f"skipped={self.skipped} retried={self.retried} dead_lettered={self.dead_lettered} "
            f"in_flight={self.in_flight_batches} reseq={self.resequencer_depth} "
            f"p50={p50} p99={p99}"
        )
        return f"{text} queues[{queues}]" if queues else text


class Metrics:
    """Mutable counters owned by one pipeline run (single event loop, no locks needed)."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.dropped = 0
        self.skipped = 0
        self.retried = 0
        self.dead_lettered = 0
        self.failed = 0
        self._latencies: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._probes: list[Callable[[], dict[str, int]]] = []
        self._depth_probe: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def add_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def watch(self, probe: Callable[[], dict[str, int]]) -> None:
        """Register a callable reporting queue depths by name."""
        self._probes.append(probe)

    def watch_flow(self, probe: Callable[[], tuple[int, int]]) -> None:
        """Register the callable giving (in-flight batches, resequencer depth)."""
        self._depth_probe = probe

    def snapshot(self) -> Snapshot:
        depths: dict[str, int] = {}
        for probe in self._probes:
            depths.update(probe())
        in_flight, reseq = self._depth_probe()
        p50 = p99 = None
        if self._latencies:
            ordered = sorted(self._latencies)
            p50 = ordered[(len(ordered) - 1) // 2] * 1000
            p99 = ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)] * 1000
        return Snapshot(
            self.messages_in,
            self.messages_out,
            self.dropped,
            self.skipped,
            self.retried,
            self.dead_lettered,
            self.failed,
            in_flight,
            reseq,
            depths,
            p50,
            p99,
        )
