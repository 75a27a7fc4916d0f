"""``streamkit verify FILE [--repair]``: check every frame, beacon and checksum of a ``.ss`` file.

Checked: the header; every frame's CRC, trailer and key; a beacon at every multiple of the
interval with a true ``remaining`` count (all by the decoder); each beacon's markers against the
state rebuilt from the frames (highest seq and timestamp, running checksum); nothing after EOS.
Marker disagreements are warnings, not damage: SeaStreamer's own appender resumes running
checksums wrongly (reference §10 Q9), and readers only use markers to seek. So are the findings
of ``formats/ss_check.SequenceChecker`` about the fields no CRC covers (seq, timestamp, key,
shard). Damage whose real cause is a header beacon interval that disagrees with the file's
beacons is reported as header damage (``check_header_interval``), which repair refuses.

``--repair`` keeps a backup copy, then truncates the file right after the last good message so it
can be appended to again. Everything after the first damage goes, which is why the backup is
written first.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import click

from streamkit.backends.file.reader import ss_path
from streamkit.backends.file.scan import Report, verify_file
from streamkit.cli.progress import file_progress
from streamkit.errors import BackendError, FileFormatError

__all__ = ["verify"]


def _backup_path(path: str) -> str:
    candidate = path + ".bak"
    n = 1
    while os.path.exists(candidate):
        candidate = f"{path}.bak.{n}"
        n += 1
    return candidate


def _write_backup(path: str, backup: str, size: int) -> None:
    """Copy ``path`` to ``backup`` and make the copy durable, or fail having changed nothing.

    Free space is checked first (a copy that fills the disk helps no one); a copy that fails
    anyway (ENOSPC, EFBIG under a file-size limit, EIO) is removed again, so no empty or partial
    ``.bak`` is left behind to be mistaken for a backup. The original is only cut after this.
    """
    directory = os.path.dirname(os.path.abspath(backup))
    try:
        stat = os.statvfs(directory)
        free: int | None = stat.f_bavail * stat.f_frsize
    except OSError:
        free = None
    if free is not None and free < size:
        raise BackendError(
            f"not repaired: the backup copy needs {size} bytes and {directory} has {free} free "
            "(nothing was changed; free some space, or repair a copy on another disk)",
            path,
        )
    try:
        shutil.copyfile(path, backup)
        with open(backup, "rb") as f:
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(backup)
        raise BackendError(
            f"not repaired: writing the backup {backup} failed ({exc.strerror}); the partial "
            "copy was removed and nothing was changed",
            path,
        ) from None


def repair_file(report: Report) -> str:
    """Back up, then truncate to ``report.good_end``; returns the backup's path."""
    if report.header_damaged and report.damage is not None:
        raise FileFormatError(
            f"{report.damage.what}; not repaired: cutting at the first damage would drop the "
            f"good data after byte {report.good_end} (the file is unchanged; fix the header)",
            report.damage.where,
            offset=report.damage.offset,
        )
    if report.header is None:
        raise FileFormatError(
            "the header is damaged: nothing to keep, so no repair (restore the file instead)",
            f"{report.path} at byte 0",
            offset=0,
        )
    backup = _backup_path(report.path)
    _write_backup(report.path, backup, report.size)
    with open(report.path, "r+b") as f:
        f.truncate(report.good_end)
        f.flush()
        os.fsync(f.fileno())
    return backup


_EXAMPLES = """
\b
Examples:
  streamkit verify ticks.ss
  streamkit verify ticks.ss --repair   # cut a damaged tail (a backup is written first)
"""


@click.command(epilog=_EXAMPLES)
@click.argument("file")
@click.option(
    "--repair",
    is_flag=True,
    help="Cut a damaged or half-written tail off after the last good message (keeps FILE.bak).",
)
def verify(file: str, repair: bool) -> None:
    """Check every frame, beacon and checksum of a .ss file; exit 3 if it is damaged.

    FILE is a path or a file:// URI. The summary goes to stdout; warnings (what the checksums
    do not cover) go to stderr, each with its byte offset. Exit codes: 0 sound (warnings
    allowed), 3 damaged (also a damaged header, which --repair refuses), 1 a repair that could
    not write its backup (nothing changed).
    """
    path = ss_path(file, "verify")
    report = verify_file(path, progress=file_progress(path, "verify"))
    for line in report.lines():
        click.echo(line)
    for warning in report.warnings:
        click.echo(f"streamkit verify: warning: {warning}", err=True)
    if report.damage is None:
        if repair:
            click.echo("nothing to repair")
        return
    if not repair:
        raise report.damage
    backup = repair_file(report)  # a failure is the one error line (the summary said "damaged")
    click.echo(f"streamkit verify: damage: {report.damage}", err=True)
    click.echo(
        f"repaired: backup written to {backup}; truncated from {report.size} to "
        f"{report.good_end} bytes ({report.size - report.good_end} dropped)"
    )
