"""``streamkit``: the one console script; every program is a command of this group.

This is the ONE place where errors become exit codes (see ``streamkit.errors``): a
StreamkitError prints one line ``streamkit <command>: <where>: <what>`` and exits with its code;
click's usage errors exit 2; a closed stdout (``| head``) exits 0 quietly; Ctrl-C exits 130.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
from click.utils import make_default_short_help

from streamkit import __version__
from streamkit.errors import EXIT_OK, EXIT_SIGINT, StreamkitError

__all__ = ["cli", "main"]

_COMMANDS = {
    "clock": "streamkit.cli.clock:clock",
    "relay": "streamkit.cli.relay:relay",
    "processor": "streamkit.cli.processor:processor",
    "decode": "streamkit.cli.decode:decode",
    "verify": "streamkit.cli.verify:verify",
    "stat": "streamkit.cli.stat:stat",
    "collect": "streamkit.cli.collect:collect",
}

# The first paragraph of each command's help, which `streamkit --help` shortens to one line
# as click would, so that it imports no command module (tests/test_startup.py keeps them equal).
_SHORT_HELP = {
    "clock": 'Emit {"tick": N} messages, N = 0, 1, 2, ..., to any URI (default stdout).',
    "relay": "Copy messages from --input to --output, keeping timestamp, sequence number and"
    " shard wherever the output can carry them.",
    "processor": "Run a function or a command over a stream: workers, order, partitions, batches.",
    "decode": "Print a .ss file (SeaStreamer's format; a path, file://PATH, or - for stdin) as"
    " log lines or ndjson.",
    "verify": "Check every frame, beacon and checksum of a .ss file; exit 3 if it is damaged.",
    "stat": "Show each stream's size, seq and time range, and every consumer group's lag.",
    "collect": "Take messages in over HTTP (POST /streams/KEY) and write them to any output URI.",
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs: start-up pays for one command
    (and its backend), never for all of them; ``--help`` lists them from ``_SHORT_HELP``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in _SHORT_HELP)
        rows = [(name, make_default_short_help(text, limit)) for name, text in _SHORT_HELP.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: also which line codec is active (imported only here: fast start)."""
    if not value or ctx.resilient_parsing:
        return
    from streamkit.formats.codec import IMPLEMENTATION

    click.echo(f"streamkit, version {__version__} (codec: {IMPLEMENTATION})")
    ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version (and whether the C codec is active) and exit.",
)
def cli() -> None:
    """Real-time streams for the shell: one line format, one .ss file format, and stdio,
    file, Redis, Kafka and memory backends chosen by URI.

    \b
      streamkit clock --stream tick --interval 100ms --count 5 \\
        | streamkit relay --input stdio:///tick --output file://./ticks.ss/tick
      streamkit decode ticks.ss --format ndjson

    Exit codes: 0 ok (also when stdout closes early), 1 runtime failure, 2 usage error,
    3 data error (invalid input, corrupt file), 130/143 after SIGINT/SIGTERM and a clean drain.
    """


def _silence_stdout() -> None:
    """``cli.runner`` imports asyncio, which ``decode`` and ``--version`` do not need."""
    from streamkit.cli.runner import silence_stdout

    silence_stdout()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args and not args[0].startswith("-") else "streamkit"
    prefix = f"streamkit {name}" if name != "streamkit" else "streamkit"
    code: Any
    try:
        code = cli.main(args=args, prog_name="streamkit", standalone_mode=False)
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except click.exceptions.Abort:
        code = EXIT_SIGINT
    except StreamkitError as error:
        sys.stderr.write(f"{prefix}: error: {error}\n")
        code = error.exit_code
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_OK
    except KeyboardInterrupt:
        code = EXIT_SIGINT
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
