"""A progress bar on stderr for long file work (``verify``, ``decode``, relays reading a file).

click's own bar (click is already the CLI's dependency): shown only when stderr is a terminal,
so pipes, logs and tests see nothing; where the command's output goes to the same terminal
(``decode`` or a relay printing to stdout), the output itself shows progress and a bar would
tear it, so there is none either. Updated once per batch, by bytes read, never per message.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from streamkit.uri import StreamUri

__all__ = ["Progress", "file_progress", "relay_progress"]


class Progress:
    """Bytes done out of ``total``; every method is a no-op when no bar is shown."""

    def __init__(self, total: int, label: str, *, prints_to_stdout: bool = False) -> None:
        self._bar: Any = None
        self._done = 0
        if total <= 0 or not _isatty(sys.stderr):
            return
        if prints_to_stdout and _isatty(sys.stdout):
            return
        self._bar = click.progressbar(
            length=total, label=label, file=sys.stderr, show_eta=True, show_percent=True
        )
        self._bar.render_progress()

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def to(self, done: int) -> None:
        """Move the bar to ``done`` bytes (it never moves back)."""
        if self._bar is not None and done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def close(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.render_finish()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def file_progress(path: str, label: str) -> Progress:
    """The bar of a whole-file scan (``verify``, ``stat``); none when ``path`` is not a regular
    file, whose scan then names what is wrong with it."""
    try:
        total = os.path.getsize(path) if os.path.isfile(path) else 0
    except OSError:
        total = 0
    return Progress(total, label)


def relay_progress(input_uri: StreamUri, output_uri: StreamUri, follow: bool | None) -> Progress:
    """The bar of a relay that reads a file to its end (a followed file has no end to show)."""
    if input_uri.scheme != "file" or follow:
        return Progress(0, "relay")
    try:
        total = os.path.getsize(input_uri.path)
    except OSError:
        total = 0
    return Progress(total, "relay", prints_to_stdout=output_uri.scheme == "stdio")
