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

from streamkit import __version__
from streamkit.cli.runner import silence_stdout
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


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (fast start, e.g. clock)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


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
        silence_stdout()
        code = EXIT_OK
    except KeyboardInterrupt:
        code = EXIT_SIGINT
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
