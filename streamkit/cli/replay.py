"""``relay``'s replay options: ``--pace`` and joining several ``--input`` streams by time.

Kept apart from relay.py so the relay loop only gains a branch: with one input and ``--pace
max`` (the defaults) nothing here touches the hot path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from streamkit.backends.base import Consumer, ConsumerOptions, Streamer
from streamkit.cli.options import DURATION
from streamkit.errors import UsageError
from streamkit.replay.join import Join
from streamkit.replay.merge import LATE_POLICIES
from streamkit.replay.pace import Pacer, parse_pace
from streamkit.uri import StreamUri

__all__ = [
    "DEFAULT_MAX_LATENESS",
    "open_consumer",
    "pacer_from",
    "replay_options",
    "report_late",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_LATENESS = 1.0


class _PaceType(click.ParamType):  # type: ignore[type-arg]
    name = "max|Nx"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | None:
        if value is None or isinstance(value, float):
            return value
        try:
            return parse_pace(str(value))
        except UsageError as error:
            self.fail(error.what, param, ctx)


def replay_options(function: F) -> F:
    """--pace, --max-lateness, --late."""
    for decorator in reversed(
        [
            click.option(
                "--pace",
                type=_PaceType(),
                metavar="max|Nx",
                default="max",
                show_default=True,
                help="Replay with the gaps between message timestamps: 1x as recorded, 10x "
                "ten times faster, 0.5x half as fast; max: as fast as possible.",
            ),
            click.option(
                "--max-lateness",
                type=DURATION,
                default=None,
                help="Several --input (a join): wait at most this long for an input that "
                "has nothing to say before moving on [default: 1s].",
            ),
            click.option(
                "--late",
                type=click.Choice(LATE_POLICIES),
                default=None,
                help="Several --input: a message older than what was already written is "
                "delivered and counted (deliver, the default) or left out and counted (drop).",
            ),
        ]
    ):
        function = decorator(function)
    return function


def pacer_from(values: dict[str, Any]) -> Pacer | None:
    speed: float | None = values.get("pace")
    return None if speed is None else Pacer(speed)


def _declared_key(uri: StreamUri) -> str | None:
    """The one stream key an input delivers, when its URI names exactly one (stdio inputs also
    deliver ``broadcast`` lines, so they declare none)."""
    return uri.keys[0] if len(uri.keys) == 1 and uri.scheme != "stdio" else None


async def open_consumer(
    sources: Sequence[Streamer],
    inputs: Sequence[StreamUri],
    options: ConsumerOptions,
    values: dict[str, Any],
) -> Consumer:
    """The input's consumer, or a ``Join`` over one consumer per ``--input``."""
    if len(inputs) == 1:
        for flag, name in (("--max-lateness", "max_lateness"), ("--late", "late")):
            if values.get(name) is not None:
                raise UsageError("applies to a join: give several --input", flag)
        return await sources[0].consumer(inputs[0].keys, options)
    if options.needs_commit:
        raise UsageError(
            f"--mode {options.mode} is not supported with several --input (a join)", "--mode"
        )
    consumers: list[Consumer] = []
    try:
        for source, uri in zip(sources, inputs):
            consumers.append(await source.consumer(uri.keys, options))
    except BaseException:
        for consumer in consumers:
            await consumer.close()
        raise
    max_lateness = values.get("max_lateness")
    return Join(
        consumers,
        max_lateness=DEFAULT_MAX_LATENESS if max_lateness is None else max_lateness,
        late=values.get("late") or "deliver",
        keys=[_declared_key(uri) for uri in inputs],
        on_late=_late_notice(),
    )


def _late_notice() -> Callable[[int], None]:
    """Say once, when it first happens, that late messages are being counted."""
    said = False

    def notice(count: int) -> None:
        nonlocal said
        if not said:
            said = True
            _say(
                f"{count} message(s) arrived later than --max-lateness allowed; "
                "the total is reported at the end"
            )

    return notice


def report_late(consumer: Consumer) -> None:
    """One line at the end when a join met late messages."""
    if not isinstance(consumer, Join):
        return
    if consumer.dropped:
        _say(f"{consumer.dropped} late messages dropped (--late drop)")
    if consumer.late:
        _say(f"{consumer.late} late messages delivered out of timestamp order")


def _say(text: str) -> None:
    sys.stderr.write(f"streamkit relay: {text}\n")
