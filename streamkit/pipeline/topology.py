"""The declarative shape of a pipeline: stages, their concurrency, dispatch, batching, policy.

A ``Stage`` wraps a handler (a Python callable, sync or async, or any ``Runner`` such as the
``--exec`` process pool). A stage with ``batch`` set gets lists of messages from a batcher in
front of it; like Broadway's batchers it must be the last stage, because its results belong to
many inputs at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from streamkit.errors import UsageError
from streamkit.pipeline.dispatch import DISPATCH_MODES, KeyFunction
from streamkit.pipeline.handlers import Handler, PythonRunner, Runner
from streamkit.pipeline.policy import ErrorPolicy

__all__ = ["BatchSpec", "Stage", "validate_stages"]


@dataclass(frozen=True)
class BatchSpec:
    """Hand the stage's handler lists of up to ``size`` messages, at most ``timeout`` s old."""

    size: int | None = None
    timeout: float | None = None
    key: KeyFunction | None = None
    """One open batch per key value (``batch_key``): each list holds one key's messages."""

    def __post_init__(self) -> None:
        if self.size is None and self.timeout is None:
            raise UsageError("a batch needs a size, a timeout, or both", "--batch-size")
        if self.size is not None and self.size < 1:
            raise UsageError(f"batch size must be at least 1 (got {self.size})", "--batch-size")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError("batch timeout must be positive", "--batch-timeout")


@dataclass
class Stage:
    handler: Handler | Runner
    workers: int = 1
    dispatch: str = "round-robin"
    key: KeyFunction | None = None
    """For ``dispatch="partition"``: the message → key function (see ``key_function``)."""
    on_error: ErrorPolicy = field(default_factory=ErrorPolicy)
    batch: BatchSpec | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})", "--workers")
        if self.dispatch not in DISPATCH_MODES:
            raise UsageError(
                f"unknown dispatch {self.dispatch!r}; use {', '.join(DISPATCH_MODES)}", "stage"
            )
        if self.dispatch == "partition" and self.key is None:
            raise UsageError("partition dispatch needs a key function", "--partition-by")

    def runner(self) -> Runner:
        handler = self.handler
        if isinstance(handler, PythonRunner) or _is_runner(handler):
            return cast(Runner, handler)
        return PythonRunner(cast(Handler, handler), threads=self.workers, name=self.name)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return str(
            getattr(self.handler, "name", None) or getattr(self.handler, "__qualname__", "stage")
        )


def _is_runner(handler: object) -> bool:
    return (
        callable(getattr(handler, "run", None))
        and callable(getattr(handler, "close", None))
        and not callable(handler)
    )


def validate_stages(stages: list[Stage]) -> None:
    if not stages:
        raise UsageError("a pipeline needs at least one stage", "pipeline")
    for stage in stages[:-1]:
        if stage.batch is not None:
            raise UsageError("only the last stage can take batches", stage.label)
