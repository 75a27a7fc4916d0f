"""Option types and option groups shared by the commands.

One ``click.ParamType`` per kind of value (URI, duration, time, offset, ``-X`` setting) so that
parsing and its error messages live in one place; decorators add the same consumer, producer
and connection options to ``relay``, ``clock`` and ``processor``; ``*_options_from`` turn the
parsed values into the library's option objects.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from streamkit.backends.base import MODES, ConnectOptions, ConsumerOptions, ProducerOptions
from streamkit.errors import UsageError
from streamkit.formats.printing import STREAM_FORMATS
from streamkit.timeutil import format_ms, parse_duration, parse_time, time_note
from streamkit.uri import StreamUri, parse_stream_uri

__all__ = [
    "DURATION",
    "OFFSET",
    "SETTING",
    "TIME",
    "URI",
    "connect_options",
    "connect_options_from",
    "consumer_options",
    "consumer_options_from",
    "producer_options",
    "producer_options_from",
]

F = TypeVar("F", bound=Callable[..., Any])


class _UriType(click.ParamType):  # type: ignore[type-arg]
    name = "URI"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> StreamUri:
        if isinstance(value, StreamUri):
            return value
        try:
            uri = parse_stream_uri(str(value))
        except UsageError as error:
            self.fail(str(error), param, ctx)
        if uri.scheme == "memory":
            # A command's memory broker dies with its process: an input would wait forever for
            # a writer that cannot exist, an output would be dropped at exit.
            option = param.opts[0] if param is not None and param.opts else "URI"
            raise UsageError(  # one line, exit 2 (cli/main.py), like the commands' own checks
                f"{uri.redacted()}: a memory broker lives inside one process, so no command "
                "can share it with another; use it from Python (streamkit.connect('memory://"
                "NAME'), docs/memory.md), or give a file, Redis or Kafka URI",
                option,
            )
        return uri


class _DurationType(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except UsageError as error:
            self.fail(str(error), param, ctx)


_TIME_NOTES = "streamkit.time_notes"


class _TimeType(click.ParamType):  # type: ignore[type-arg]
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        what = f"--{param.name}" if param is not None and param.name else "time"
        try:
            parsed = parse_time(str(value), what=what)
        except UsageError as error:
            self.fail(str(error), param, ctx)
        note = time_note(str(value), what)
        if note is not None and ctx is not None:  # printed under -v (consumer_options_from)
            ctx.meta.setdefault(_TIME_NOTES, []).append(note)
        return parsed


class _OffsetType(click.ParamType):  # type: ignore[type-arg]
    name = "start|end|N|-N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str | int:
        text = str(value).strip().lower()
        if text in ("start", "end"):
            return text
        if text in ("beginning", "earliest"):
            return "start"
        if text in ("latest",):
            return "end"
        if text.isdigit():
            return int(text)
        if text.startswith("-") and text[1:].isdigit():
            if int(text) == 0:
                self.fail("invalid offset -0: the last N needs N >= 1 (or use end)", param, ctx)
            return int(text)  # the last N of each stream/shard/partition (kcat's -o -N)
        self.fail(
            f"invalid offset {value!r}: use start, end or a sequence number (-N: the last N)",
            param,
            ctx,
        )


class _SettingType(click.ParamType):  # type: ignore[type-arg]
    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, setting = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(
                f"invalid setting {value!r}: write -X key=value, e.g. -X fetch.wait.max.ms=10",
                param,
                ctx,
            )
        return key.strip(), setting


URI = _UriType()
DURATION = _DurationType()
TIME = _TimeType()
OFFSET = _OffsetType()
SETTING = _SettingType()


def _apply(decorators: list[Callable[[F], F]], function: F) -> F:
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def consumer_options(function: F) -> F:
    """Where to start and stop reading, and how to share the input."""
    return _apply(
        [
            click.option(
                "--offset",
                type=OFFSET,
                default=None,
                help="Start AT this position: start, end, a sequence number "
                "(inclusive), or -N: the last N of each stream/shard/partition. "
                "Default: start for files, stdin and -e; end for Redis and Kafka.",
            ),
            click.option(
                "--since",
                type=TIME,
                default=None,
                help="Only messages with timestamp >= TIME: ISO-8601 (2026-12-01, "
                "2026-12-01T07:00:00+02:00; UTC when no zone), now, today, relative "
                "(-10m) or epoch seconds (milliseconds from 10^11 on, as kcat).",
            ),
            click.option(
                "--until",
                type=TIME,
                default=None,
                help="Stop after the last message with timestamp <= TIME.",
            ),
            click.option(
                "--mode",
                type=click.Choice(MODES),
                default="realtime",
                show_default=True,
                help="realtime: no stored position; resumable: continue where the group "
                "stopped; load-balanced: share the stream within --group.",
            ),
            click.option(
                "--group",
                default=None,
                help="Consumer group name (resumable and load-balanced modes).",
            ),
            click.option(
                "--consumer-name",
                default=None,
                help="This member's name within --group (default: host and pid).",
            ),
            click.option(
                "--claim-idle",
                type=DURATION,
                default=None,
                help="Load-balanced Redis: claim another member's pending entries idle "
                "longer than this.",
            ),
            click.option(
                "--follow/--no-follow",
                "follow",
                default=None,
                help="Wait for new messages at the end (default for Redis and Kafka) or "
                "stop at the end as it was at start (default for files and stdin).",
            ),
            click.option(
                "-e",
                "stop_at_end",
                is_flag=True,
                default=False,
                help="Same as --no-follow (kcat's -e).",
            ),
            click.option(
                "--on-invalid",
                type=click.Choice(["fail", "skip", "raw"]),
                default="fail",
                show_default=True,
                help="An invalid input line: fail (exit 3), skip (warn and count), or "
                "raw (keep the whole line as a broadcast payload).",
            ),
            click.option(
                "--no-meta",
                is_flag=True,
                default=False,
                help="Input lines carry no [timestamp | stream | seq | shard] prefix: "
                "every line is a payload, even one starting with '['.",
            ),
            click.option(
                "--input-format",
                type=click.Choice(["line", "json"]),
                default="line",
                show_default=True,
                help="stdin format: the line format or one JSON object per line.",
            ),
        ],
        function,
    )


def consumer_options_from(values: dict[str, Any]) -> ConsumerOptions:
    since, until = values.get("since"), values.get("until")
    if since is not None and until is not None and until < since:
        raise UsageError(
            f"{format_ms(until)} is before --since {format_ms(since)} (UTC): "
            "nothing could be selected",
            "--until",
        )
    context = click.get_current_context(silent=True)
    if context is not None and values.get("verbose"):
        for note in context.meta.pop(_TIME_NOTES, []):
            sys.stderr.write(f"streamkit: {note}\n")
    follow = values.get("follow")
    if values.get("stop_at_end"):
        if follow:
            raise UsageError("-e and --follow contradict each other", "-e")
        follow = False
    return ConsumerOptions(
        offset=values.get("offset"),
        since=since,
        until=until,
        mode=values.get("mode") or "realtime",
        group=values.get("group"),
        follow=follow,
        consumer_name=values.get("consumer_name"),
        claim_idle=values.get("claim_idle"),
        on_invalid=values.get("on_invalid") or "fail",
        no_meta=bool(values.get("no_meta")),
        input_format=values.get("input_format") or "line",
    )


def producer_options(function: F) -> F:
    """How the output is written."""
    return _apply(
        [
            click.option(
                "--output-format",
                type=click.Choice(list(STREAM_FORMATS)),
                default="line",
                show_default=True,
                help="stdout format: the line format or one JSON object per message "
                "(topic, partition, offset, ts, key, headers, payload).",
            ),
            click.option(
                "--beacon-interval",
                type=click.IntRange(min=128),
                default=None,
                help="File output: bytes between beacons in a new file (default 1048576).",
            ),
            click.option(
                "--eos/--no-eos",
                "end_with_eos",
                default=True,
                show_default=True,
                help="File output: end the file with an end-of-stream frame on a clean close "
                "(--no-eos leaves it open-ended, as a writer that will come back).",
            ),
            click.option(
                "--maxlen",
                type=click.IntRange(min=1),
                default=None,
                help="Redis output: trim the stream to about N entries (MAXLEN ~).",
            ),
            click.option(
                "--partition-by",
                default=None,
                help="Kafka output: 'key' (keep each message's key) or a top-level JSON "
                "field of the payload used as the record key.",
            ),
        ],
        function,
    )


def producer_options_from(values: dict[str, Any]) -> ProducerOptions:
    return ProducerOptions(
        beacon_interval=values.get("beacon_interval"),
        end_with_eos=values.get("end_with_eos", True),
        maxlen=values.get("maxlen"),
        partition_by=values.get("partition_by"),
        output_format=values.get("output_format") or "line",
    )


def connect_options(function: F) -> F:
    """How to reach servers."""
    return _apply(
        [
            click.option(
                "-X",
                "settings",
                type=SETTING,
                multiple=True,
                help="Client setting passed through (librdkafka properties for Kafka), "
                "e.g. -X fetch.wait.max.ms=10. Repeatable.",
            ),
            click.option(
                "--connect-timeout",
                type=DURATION,
                default=10.0,
                show_default=True,
                help="Give up on an unreachable server after this long.",
            ),
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                default=False,
                help="Report start positions, reconnects and a summary on stderr.",
            ),
        ],
        function,
    )


def connect_options_from(values: dict[str, Any]) -> ConnectOptions:
    return ConnectOptions(
        connect_timeout=values.get("connect_timeout") or 10.0,
        settings=dict(values.get("settings") or ()),
        verbose=bool(values.get("verbose")),
    )
