"""One error hierarchy for the whole toolkit, and the exit code each kind maps to.

Every user-facing error carries *what* went wrong and *where* (an input name and line, a file and
byte offset, a URI, a broker address). ``str(error)`` is the one line the CLI prints.

    StreamkitError                exit 1  runtime failure (the default)
    ├── UsageError                exit 2  bad URI, bad option, option a backend cannot honour
    ├── DataError                 exit 3  malformed input, corrupt file
    │   ├── LineFormatError               a line of the stdio format is invalid
    │   └── FileFormatError               a .ss file is damaged (with the byte offset)
    ├── BackendError              exit 1  a server or file failed us
    │   └── ConnectError                  could not reach a server
    └── HandlerError              exit 1  a user function failed under the ``fail`` policy

``EndOfStream`` is not an error: a consumer's ``recv()`` raises it when a finite stream is done.
Exit codes 130 and 143 (SIGINT, SIGTERM) and 0 for a closed stdout are decided by the CLI runner,
not by exceptions.
"""

from __future__ import annotations

__all__ = [
    "EXIT_DATA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "BackendError",
    "ConnectError",
    "DataError",
    "EndOfStream",
    "FileFormatError",
    "HandlerError",
    "LineFormatError",
    "StreamkitError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class StreamkitError(Exception):
    """Base of every error streamkit raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, what: str, where: str | None = None) -> None:
        super().__init__(what, where)
        self.what = what
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class UsageError(StreamkitError):
    """The caller asked for something impossible: a bad URI, option or combination."""

    exit_code = EXIT_USAGE


class DataError(StreamkitError):
    """The data is bad: a malformed line, a corrupt or truncated file."""

    exit_code = EXIT_DATA


class LineFormatError(DataError):
    """An input line does not follow the line format.

    ``line_number`` is 1-based within the named input; ``part`` is the offending text.
    """

    def __init__(
        self, what: str, where: str | None = None, *, line_number: int = 0, part: str | None = None
    ) -> None:
        super().__init__(what, where)
        self.line_number = line_number
        self.part = part


class FileFormatError(DataError):
    """A ``.ss`` file is damaged at ``offset`` (absolute byte offset in the file)."""

    def __init__(self, what: str, where: str | None = None, *, offset: int | None = None) -> None:
        super().__init__(what, where)
        self.offset = offset


class BackendError(StreamkitError):
    """A server, broker or file failed at run time."""


class ConnectError(BackendError):
    """A server could not be reached (after the connect timeout or the retries)."""


class HandlerError(StreamkitError):
    """A user handler failed and the error policy says stop."""


class EndOfStream(Exception):
    """A finite stream has delivered everything (stdin EOF, end of file, ``until`` reached)."""
