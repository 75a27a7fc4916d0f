"""Concurrency for stream processing: stages of workers joined by bounded queues.

    source consumer → stage(s) → [batcher → batch stage] → sink producer

Backpressure comes from bounded queues and an in-flight window, ordered output from a
resequencer, per-key order from partition dispatch. ``Pipeline.run`` drives it; the
``processor`` command is a thin CLI over it.
"""

from streamkit.pipeline.dispatch import key_function
from streamkit.pipeline.exec_pool import ExecPool
from streamkit.pipeline.handlers import Failure, PythonRunner, Runner, load_handler
from streamkit.pipeline.metrics import Snapshot
from streamkit.pipeline.policy import ErrorPolicy, parse_policy
from streamkit.pipeline.runner import Pipeline
from streamkit.pipeline.topology import BatchSpec, Stage

__all__ = [
    "BatchSpec",
    "ErrorPolicy",
    "ExecPool",
    "Failure",
    "Pipeline",
    "PythonRunner",
    "Runner",
    "Snapshot",
    "Stage",
    "key_function",
    "load_handler",
    "parse_policy",
]
