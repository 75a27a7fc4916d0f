"""What a stage does with a message whose handler failed: fail, skip, retry, or dead-letter.

``retry:N`` re-runs each failed call up to N more times with exponential backoff and then falls
back to ``then`` (``fail`` by default). Dead letters carry the original message and the error as
one JSON object, so any backend can hold them and any tool can read them back.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from streamkit.errors import HandlerError, UsageError
from streamkit.message import Message
from streamkit.uri import parse_stream_uri

__all__ = ["ErrorPolicy", "dead_letter_payload", "describe", "handler_error", "parse_policy"]

FINAL_ACTIONS = ("fail", "skip", "dead-letter")


@dataclass(frozen=True)
class ErrorPolicy:
    """``action`` applies once ``retries`` further attempts (with backoff) have failed too."""

    action: str = "fail"
    retries: int = 0
    dead_letter: str | None = None
    """The stream URI for ``dead-letter`` (``kafka://host/dlq``, ``file://./dlq.ss/dlq``...)."""
    backoff: float = 0.05
    """Seconds before the first retry; doubled each time, capped by ``max_backoff``."""
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.action not in FINAL_ACTIONS:
            raise UsageError(
                f"unknown error action {self.action!r}; use fail, skip, retry:N or dead-letter:URI",
                "--on-error",
            )
        if self.retries < 0:
            raise UsageError(f"negative retry count {self.retries}", "--on-error")
        if self.action == "dead-letter" and not self.dead_letter:
            raise UsageError("dead-letter needs a stream URI: dead-letter:URI", "--on-error")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return float(min(self.max_backoff, self.backoff * (2**attempt)))


def parse_policy(text: str) -> ErrorPolicy:
    """``fail`` | ``skip`` | ``retry:N`` | ``dead-letter:URI`` → ErrorPolicy."""
    value = text.strip()
    if value in ("fail", "skip"):
        return ErrorPolicy(value)
    if value.startswith("retry:"):
        count = value[len("retry:") :]
        if not count.isdigit():
            raise UsageError(f"retry needs a count, e.g. retry:3 (got {text!r})", "--on-error")
        return ErrorPolicy("fail", retries=int(count))
    if value.startswith("dead-letter:"):
        uri = value[len("dead-letter:") :]
        if uri:  # a bad URI is a usage error now, not after the first failure
            try:
                parse_stream_uri(uri)
            except UsageError as error:
                raise UsageError(f"bad dead-letter URI: {error}", "--on-error") from None
        return ErrorPolicy("dead-letter", dead_letter=uri)
    raise UsageError(
        f"unknown policy {text!r}; use fail, skip, retry:N or dead-letter:URI", "--on-error"
    )


def describe(message: Message) -> str:
    """``stream:shard:seq`` plus the start of the payload: enough to find the message again."""
    head = message.payload[:60]
    more = "..." if len(message.payload) > 60 else ""
    return f"{message.stream_key}:{message.shard_id}:{message.seq} {head!r}{more}"


def handler_error(
    stage: str, failed: Message | list[Message], error: BaseException
) -> HandlerError:
    if isinstance(failed, Message):
        subject = f"message {describe(failed)}"
    else:
        subject = f"a batch of {len(failed)} messages from {describe(failed[0])}"
    return HandlerError(f"handler failed on {subject}: {type(error).__name__}: {error}", stage)


def dead_letter_payload(message: Message, error: BaseException, stage: str) -> bytes:
    """One JSON object: where the message came from, its payload, and why it failed."""
    record: dict[str, object] = {
        "error": f"{type(error).__name__}: {error}",
        "stage": stage,
        "stream": message.stream_key,
        "shard": message.shard_id,
        "seq": message.seq,
        "timestamp": message.timestamp,
    }
    try:
        record["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(message.payload).decode("ascii")
    return json.dumps(record, separators=(",", ":")).encode("utf-8")
