"""The file backend (``file://``, SeaStreamer's ``.ss`` format).

``streamer`` hands out the producer (``producer``) and consumer (``consumer``, with the
resumable group handling); ``reader`` and ``writer`` do a file's I/O around the sans-IO codec of
``formats/ss.py``; ``positions`` keeps resumable groups' committed places beside the file;
``scan`` is the whole-file check behind ``verify``, and ``stats`` the read-only ``stat``
collector. ``FileStreamer`` and ``open_streamer`` load on first use, so ``decode`` and ``verify``
(which need only the reader) never import asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamkit.lazy as lazy

if TYPE_CHECKING:
    from streamkit.backends.file.streamer import FileStreamer, open_streamer

__all__ = ["FileStreamer", "open_streamer"]


def __getattr__(name: str) -> Any:
    return lazy.load(__name__, dict.fromkeys(__all__, "streamkit.backends.file.streamer"), name)
