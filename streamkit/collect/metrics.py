"""The few figures ``collect`` exposes at ``GET /metrics``, in Prometheus' text format.

Plain counters on one object (the server is one event loop: no locks), rendered on request.
No client library: the text format is five line shapes, and a dependency would cost more than
it saves.
"""

from __future__ import annotations

import bisect

__all__ = ["LATENCY_BUCKETS", "REJECT_CAUSES", "Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds in seconds of the request latency histogram (``+Inf`` is added)."""

REJECT_CAUSES = (
    "busy",
    "too_large",
    "bad_request",
    "unsupported_type",
    "unauthorized",
    "not_found",
    "draining",
    "output_failed",
)


class Metrics:
    def __init__(self) -> None:
        self.received = 0
        """Messages taken in (passed every check and queued for the output)."""
        self.written = 0
        """Messages the output accepted (``send_many`` returned)."""
        self.flushed = 0
        """Messages known durable (a flush covered them)."""
        self.requests = 0
        self.rejected = dict.fromkeys(REJECT_CAUSES, 0)
        self.in_flight = 0
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def observe(self, seconds: float) -> None:
        self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def render(self) -> str:
        p = "streamkit_collect_"
        lines = [
            f"# HELP {p}received_messages_total Messages taken in and queued for the output.",
            f"# TYPE {p}received_messages_total counter",
            f"{p}received_messages_total {self.received}",
            f"# HELP {p}written_messages_total Messages the output accepted.",
            f"# TYPE {p}written_messages_total counter",
            f"{p}written_messages_total {self.written}",
            f"# HELP {p}flushed_messages_total Messages a flush of the output covered.",
            f"# TYPE {p}flushed_messages_total counter",
            f"{p}flushed_messages_total {self.flushed}",
            f"# HELP {p}requests_total HTTP requests to /streams/.",
            f"# TYPE {p}requests_total counter",
            f"{p}requests_total {self.requests}",
            f"# HELP {p}rejected_requests_total Requests refused, by cause.",
            f"# TYPE {p}rejected_requests_total counter",
        ]
        lines += [
            f'{p}rejected_requests_total{{cause="{cause}"}} {n}'
            for cause, n in self.rejected.items()
        ]
        lines += [
            f"# HELP {p}in_flight_messages Messages taken in, not yet answered.",
            f"# TYPE {p}in_flight_messages gauge",
            f"{p}in_flight_messages {self.in_flight}",
            f"# HELP {p}request_seconds Time from a request's arrival to its answer (POSTs).",
            f"# TYPE {p}request_seconds histogram",
        ]
        running = 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self._buckets):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{p}request_seconds_bucket{{le="{le}"}} {running}')
        lines.append(f"{p}request_seconds_sum {self._latency_sum:.6f}")
        lines.append(f"{p}request_seconds_count {self._latency_count}")
        return "\n".join(lines) + "\n"
