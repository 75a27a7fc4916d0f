"""Where readers stand in a memory topic: plain cursors (realtime) and consumer groups.

A cursor is one integer; a group adds what it owes (pending ranges to hand out again) and what
it has acknowledged, so a topic can drop its head only past what every active reader passed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Cursor", "Group", "GroupStats"]


@dataclass(frozen=True)
class GroupStats:
    name: str
    mode: str
    members: int
    position: int
    """The next sequence number the group hands out."""
    committed: int
    """Every message below this sequence number is acknowledged (commit modes)."""
    lag: int
    """Messages in the topic not yet acknowledged by the group (realtime: not yet delivered)."""
    missed: int
    """Messages evicted before the group read them."""


class Cursor:
    """Where one reader stands: ``pos`` is the next sequence number it reads.

    ``active`` cursors hold back a backpressure topic; a cursor drops out when its consumer
    ends, is closed, or is garbage collected (topics keep cursors in a WeakSet).
    """

    __slots__ = ("__weakref__", "active", "missed", "pos")

    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.missed = 0
        self.active = True

    def needed(self) -> int:
        """The lowest sequence number this reader may still read."""
        return self.pos

    def evicted_to(self, head: int) -> None:
        """The head moved past this cursor: count what it missed and stand at the head."""
        if self.pos < head:
            self.missed += head - self.pos
            self.pos = head


class Group(Cursor):
    """A consumer group on one topic: members share ``pos``; acks move ``committed``.

    In commit modes (resumable, load-balanced) a message counts as handled only when acked, so
    a member that leaves hands its unacknowledged messages back (``redeliver``) and a new member
    continues after the last acknowledged message. In realtime mode delivery is the ack.
    """

    __slots__ = ("acked", "committed", "members", "mode", "name", "redeliver")

    def __init__(self, name: str, mode: str, pos: int) -> None:
        super().__init__(pos)
        self.name = name
        self.mode = mode
        self.committed = pos
        self.acked: set[int] = set()
        self.redeliver: deque[tuple[int, int]] = deque()
        self.members = 0
        self.active = False

    @property
    def commits(self) -> bool:
        return self.mode != "realtime"

    def needed(self) -> int:
        if not self.commits:
            return self.pos
        low = self.committed
        return min(low, self.redeliver[0][0]) if self.redeliver else low

    def evicted_to(self, head: int) -> None:
        super().evicted_to(head)
        if self.committed < head:
            self.committed = head
            self.acked = {s for s in self.acked if s >= head}
        while self.redeliver and self.redeliver[0][1] <= head:
            self.redeliver.popleft()
        if self.redeliver and self.redeliver[0][0] < head:
            self.redeliver[0] = (head, self.redeliver[0][1])

    def ack(self, seqs: Sequence[int]) -> None:
        """Record handled messages; ``committed`` advances over the contiguous acked prefix."""
        if not self.commits or not seqs:
            return
        committed = self.committed
        if seqs[0] == committed and seqs[-1] == committed + len(seqs) - 1:
            committed += len(seqs)  # the usual case: one whole batch, in order
        else:
            self.acked.update(s for s in seqs if s >= committed)
        acked = self.acked
        while acked and committed in acked:
            acked.discard(committed)
            committed += 1
        if acked and min(acked) < committed:
            self.acked = {s for s in acked if s >= committed}
        self.committed = committed

    def give_back(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Queue a leaving member's unacknowledged messages for the other members."""
        for start, end in ranges:
            run_start: int | None = None
            for seq in range(max(start, self.committed), end):
                if seq in self.acked:
                    if run_start is not None:
                        self.redeliver.append((run_start, seq))
                        run_start = None
                elif run_start is None:
                    run_start = seq
            if run_start is not None:
                self.redeliver.append((run_start, end))

    def stats(self, end: int) -> GroupStats:
        done = self.committed if self.commits else self.pos
        return GroupStats(
            self.name, self.mode, self.members, self.pos, self.committed, end - done, self.missed
        )
