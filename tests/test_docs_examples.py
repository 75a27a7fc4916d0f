"""Every example in README.md and docs/*.md runs, exits as documented and prints what it says.

The conventions (which blocks run, markers, private servers, ``until Ctrl-C``, the visible
``*(not run by the docs test: ...)*`` note) are in tests/docs_examples.py's docstring. One test per
block, id ``FILE:LINE`` of its opening fence; the blocks of one file share a directory and
servers and run in document order (a block selected alone first runs the blocks before it),
on a worker thread per file, a few files at a time.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.docs_examples import (
    DOC_FILES,
    EXIT_SIGINT,
    MARKER,
    ROOT,
    Block,
    Command,
    Outcome,
    all_blocks,
    console_commands,
    extract,
    parse_marker,
    run_command,
    shell_commands,
    shim_dir,
    shown,
    substitute,
)
from tests.servers.kafka_broker import KafkaBroker
from tests.servers.kafka_broker import free_port as kafka_port
from tests.servers.redis_server import RedisServer

BLOCKS = all_blocks()
RUN = [block for block in BLOCKS if block.skip is None]
NOT_RUN = [block for block in BLOCKS if block.skip is not None]
DEFAULT_INTERRUPT = 3.0
DEFAULT_TIMEOUT = 20.0
PARALLEL_FILES = 3  # files run side by side; more would slow the 3 s follow windows on 2 cores
RESULT_WAIT = 600.0


@dataclass
class DocEnv:
    """One doc file's directory and private servers, and what its blocks did.

    ``run_until`` runs the file's blocks in order on a worker thread; the tests wait for their
    block's result, so files run side by side (mostly sleeping: clocks, follow windows) while each
    file keeps its order.
    """

    path: Path
    directory: Path
    bin: Path
    redis: RedisServer | None = None
    kafka: KafkaBroker | None = None
    results: dict[int, list[str]] = field(default_factory=dict)
    finished: dict[int, threading.Event] = field(default_factory=dict)

    def blocks(self) -> list[Block]:
        return [block for block in RUN if block.path == self.path]

    def run_until(self, last: int) -> None:
        """Run the blocks up to line ``last``; any crash becomes the failure of its block."""
        blocks = self.blocks()
        for block in blocks:
            self.finished.setdefault(block.line, threading.Event())
        try:
            self.prepare(blocks)
            setup_error = None
        except Exception as error:  # reported by each of the file's tests
            setup_error = f"{shown(self.path)}: setting up failed: {error!r}"
        for block in blocks:
            if block.line > last:
                break
            if setup_error:
                self.results[block.line] = [setup_error]
            else:
                try:
                    self.results[block.line] = run_block(self, block)
                except Exception:  # a bug here must fail the block's test, not hang it
                    self.results[block.line] = [f"{block.where}: {traceback.format_exc()}"]
            self.finished[block.line].set()

    def result(self, block: Block) -> list[str]:
        event = self.finished.get(block.line)
        assert event is not None, f"{block.where} was not scheduled"
        assert event.wait(RESULT_WAIT), f"{block.where}: no result within {RESULT_WAIT:.0f}s"
        return self.results[block.line]

    def start_servers(self, blocks: list[Block]) -> None:
        text = "".join(block.text for block in blocks)
        if ":6379" in text and self.redis is None:
            folder = self.directory.parent / "redis"
            folder.mkdir(exist_ok=True)
            self.redis = RedisServer(folder)
            self.redis.start()
        if ":9092" in text and self.kafka is None:
            self.kafka = KafkaBroker(
                "127.0.0.1", kafka_port(), log_path=self.directory.parent / "tansu.log"
            )
            self.kafka.start()

    def prepare(self, blocks: list[Block]) -> None:
        """Write the ``file=PATH`` blocks first: a command may name a module shown after it."""
        self.start_servers(blocks)
        for block in blocks:
            target = block.value("file")
            if target and not (self.directory / target).exists():
                path = self.directory / target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.local(block.text))

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.kafka is not None:
            self.kafka.stop()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        return env

    def local(self, text: str) -> str:
        redis = f"127.0.0.1:{self.redis.port}" if self.redis else None
        kafka = self.kafka.address if self.kafka else None
        return substitute(text, redis, kafka)


@pytest.fixture(scope="session")
def doc_envs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, DocEnv]]:
    """Start every selected file's blocks (up to its last selected one) on a small thread pool."""
    last: dict[Path, int] = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        block = callspec.params.get("block") if callspec is not None else None
        if isinstance(block, Block) and block.skip is None:
            last[block.path] = max(last.get(block.path, 0), block.line)
    envs: dict[Path, DocEnv] = {}
    bin_dir = shim_dir(tmp_path_factory.mktemp("docs-bin"))
    for path in DOC_FILES:
        base = tmp_path_factory.mktemp(f"docs-{path.stem}")
        (base / "work").mkdir()
        envs[path] = DocEnv(path, base / "work", bin_dir)
        for block in envs[path].blocks():
            envs[path].finished[block.line] = threading.Event()
    pool = ThreadPoolExecutor(max_workers=PARALLEL_FILES, thread_name_prefix="docs")
    try:
        for path, line in sorted(last.items(), key=lambda item: -len(envs[item[0]].blocks())):
            pool.submit(envs[path].run_until, line)
        yield envs
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for env in envs.values():
            env.stop()


def run_block(env: DocEnv, block: Block) -> list[str]:
    """Run one block in its file's directory; the failures found (empty: as documented)."""
    if block.lang == "python":
        return run_python(env, block)
    interrupt = float(block.value("interrupt", str(DEFAULT_INTERRUPT)) or DEFAULT_INTERRUPT)
    timeout = float(block.value("timeout", str(DEFAULT_TIMEOUT)) or DEFAULT_TIMEOUT)
    expected: list[str] = []
    if block.lang == "console":
        commands, expected = console_commands(block)
    else:
        commands = shell_commands(block)
    failures: list[str] = []
    stdout = ""
    for command in commands:
        outcome = run_command(
            ["bash", "-o", "pipefail", "-c", env.local(command.text)],
            env.directory,
            env.env(),
            interrupt=interrupt if command.follows else None,
            timeout=timeout,
        )
        stdout += outcome.stdout
        problem = check_command(block, command, outcome, timeout)
        if problem:
            failures.append(problem)  # and go on: the later commands' failures are news too
    failures += check_output(block, stdout, expected)
    return failures


def check_command(block: Block, command: Command, outcome: Outcome, timeout: float) -> str | None:
    where = f"{shown(block.path)}:{command.line}"
    tail = outcome.stderr.strip()[-1500:]
    if outcome.code is None:
        hint = "" if command.follows else " (if it follows forever, say `# ... until Ctrl-C`)"
        return f"{where}: still running after {timeout:.0f}s{hint}: {command.text}\n{tail}"
    want = EXIT_SIGINT if command.follows else 0
    if outcome.code != want:
        return f"{where}: exit {outcome.code}, documented {want}: {command.text}\nstderr: {tail}"
    if "Traceback" in outcome.stderr:
        return f"{where}: a traceback on stderr: {command.text}\n{tail}"
    return None


def check_output(block: Block, stdout: str, expected: list[str]) -> list[str]:
    failures = []
    for text in [*block.values("output-contains"), *expected]:
        if text not in stdout:
            failures.append(f"{block.where}: stdout lacks {text!r}")
    for pattern in block.values("output-matches"):
        if not re.search(pattern, stdout, re.MULTILINE):
            failures.append(f"{block.where}: stdout does not match {pattern!r}")
    lines = block.value("output-lines")
    if lines is not None and len(stdout.splitlines()) != int(lines):
        failures.append(
            f"{block.where}: {len(stdout.splitlines())} stdout lines, documented {lines}"
        )
    if failures:
        failures.append(f"(the block's stdout ends: {stdout[-800:]!r})")
    return failures


def run_python(env: DocEnv, block: Block) -> list[str]:
    source = env.local(block.text)
    if block.value("file"):
        compile(source, block.where, "exec")  # written by prepare(); it must at least be Python
        return []
    outcome = run_command(
        [sys.executable, "-c", source],
        env.directory,
        env.env(),
        interrupt=None,
        timeout=float(block.value("timeout", str(DEFAULT_TIMEOUT)) or DEFAULT_TIMEOUT),
    )
    command = Command(block.line + 1, f"python (the block at {block.where})", False)
    problem = check_command(block, command, outcome, DEFAULT_TIMEOUT)
    return [problem] if problem else check_output(block, outcome.stdout, [])


@pytest.mark.parametrize("block", RUN, ids=[block.where for block in RUN])
def test_example_runs_as_documented(block: Block, doc_envs: dict[Path, DocEnv]) -> None:
    failures = doc_envs[block.path].result(block)  # earlier blocks of the file ran first
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("block", NOT_RUN, ids=[block.where for block in NOT_RUN])
def test_example_not_run_still_parses(block: Block) -> None:
    """A block the suite cannot run is at least valid shell or Python."""
    if block.lang == "python":
        compile(block.text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return
    texts = (
        [c.text for c in console_commands(block)[0]] if block.lang == "console" else [block.text]
    )
    for text in texts:
        result = subprocess.run(["bash", "-n", "-c", text], capture_output=True, check=False)
        assert result.returncode == 0, f"{block.where}: {result.stderr.decode()}"


def test_every_marker_sits_on_an_example() -> None:
    """A marker not directly above a runnable block would be silently ignored: refuse it."""
    for path in DOC_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        starts = {block.line for block in extract(path)}
        for number, line in enumerate(lines, 1):
            if MARKER.match(line.strip()):
                following = next(
                    (n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip()), 0
                )
                assert following in starts, f"{shown(path)}:{number}: marker on no example"


def test_examples_are_found() -> None:
    """The extractor sees the README's examples (a broken fence regex would silently pass)."""
    readme = [block for block in BLOCKS if block.path.name == "README.md"]
    assert {block.lang for block in readme} >= {"sh", "python"}
    assert len(RUN) >= 10


SAMPLE = """# Sample

<!-- example: output-contains="a b" interrupt=1 -->
```sh
# a comment
echo one \\
  two
streamkit relay --input redis://127.0.0.1:6379/x   # live, until Ctrl-C
pip install -e . && echo three
```

```console
$ echo four
four
```

```python
print(1)
```
*(not run by the docs test: it needs
a real cluster)*

```text
not an example
```
"""


def test_extract_reads_markers_commands_and_visible_notes(tmp_path: Path) -> None:
    doc = tmp_path / "sample.md"
    doc.write_text(SAMPLE)
    sh, console, python = extract(doc)
    assert (sh.lang, sh.line, sh.skip) == ("sh", 4, None)
    assert sh.values("output-contains") == ["a b"] and sh.value("interrupt") == "1"
    commands = shell_commands(sh)
    assert [c.line for c in commands] == [6, 8, 9]
    assert commands[0].text == "echo one \\\n  two"
    assert [c.follows for c in commands] == [False, True, False]
    assert commands[2].text == "echo three"  # the leading pip install is dropped
    assert console_commands(console) == ([Command(13, "echo four", False)], ["four"])
    assert python.skip == "it needs a real cluster"


def test_unknown_marker_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown example marker 'expect=3'"):
        parse_marker("expect=3", "x.md:1")


def test_ports_are_substituted_only_for_the_documented_defaults() -> None:
    text = "redis://127.0.0.1:6379/a kafka://localhost:9092/b redis://127.0.0.1:63790/c"
    assert substitute(text, "127.0.0.1:5000", "127.0.0.1:6000") == (
        "redis://127.0.0.1:5000/a kafka://127.0.0.1:6000/b redis://127.0.0.1:63790/c"
    )


def test_a_follower_is_interrupted_and_a_hung_command_killed(tmp_path: Path) -> None:
    env = dict(os.environ)
    script = "trap 'exit 130' INT; while :; do sleep 0.05; done"
    interrupted = run_command(["bash", "-c", script], tmp_path, env, interrupt=0.3, timeout=5)
    assert interrupted.code == EXIT_SIGINT and interrupted.seconds < 4
    hung = run_command(
        ["bash", "-c", "trap '' INT; sleep 30"], tmp_path, env, interrupt=0.2, timeout=0.5
    )
    assert hung.code is None and hung.seconds < 5
