"""The stdio backend: the line format on stdin and stdout.

One process has one stdin and one stdout, so every stdio streamer in a process shares one
``_StdinHub`` (reads big chunks, decodes them, routes messages to consumers by key and group)
and one ``_StdoutWriter`` (one ``write`` per batch, sequence counters per key shared by all
producers, as SeaStreamer does).

``reader`` holds the stdin side (the hub and ``StdioConsumer``), ``writer`` the stdout side
(the writer and ``StdioProducer``), ``streamer`` the ``StdioStreamer`` that hands them out, and
``relay`` the compiled stdin → stdout relay that makes no ``Message`` per line.
"""

from streamkit.backends.stdio.reader import CHUNK_SIZE as CHUNK_SIZE
from streamkit.backends.stdio.reader import StdioConsumer
from streamkit.backends.stdio.reader import _StdinHub as _StdinHub
from streamkit.backends.stdio.relay import relay_lines
from streamkit.backends.stdio.streamer import StdioStreamer, open_streamer
from streamkit.backends.stdio.writer import StdioProducer
from streamkit.backends.stdio.writer import _StdoutWriter as _StdoutWriter

__all__ = ["StdioConsumer", "StdioProducer", "StdioStreamer", "open_streamer", "relay_lines"]
