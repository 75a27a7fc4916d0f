"""Replay and time: ``--pace`` (replay at the recorded rhythm) and ``join`` (several streams
merged into one timeline). See docs/replay.md."""

from streamkit.replay.join import Join, join
from streamkit.replay.merge import Merger
from streamkit.replay.pace import Clock, MonotonicClock, Pacer, parse_pace

__all__ = ["Clock", "Join", "Merger", "MonotonicClock", "Pacer", "join", "parse_pace"]
