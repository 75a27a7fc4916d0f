"""Start-up stays cheap: a command imports its own module and its scheme's backend, nothing more.

Each check runs in a fresh interpreter and reads ``sys.modules``, so an import added at the top
of a shared module (a backend's client library, asyncio in ``decode``) fails here by name rather
than as a slower ``streamkit --version``. Numbers: docs/benchmarks.md, "Start-up".
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.utils import make_default_short_help

from streamkit.cli import main as cli_main

CLIENT_LIBRARIES = ["confluent_kafka", "redis", "hiredis", "uvicorn", "aiohttp", "httptools"]


def _modules_after(code: str, cwd: Path | None = None, stdin: bytes = b"") -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a new python (``stdin`` on fd 0)."""
    probe = (
        "import sys, json\n"
        f"{code}\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    stderr = done.stderr.decode()
    assert "MODULES " in stderr, stderr
    return set(json.loads(stderr.rsplit("MODULES ", 1)[1]))


def _imported_after(code: str, cwd: Path | None = None) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a new python."""
    return {name.split(".")[0] for name in _modules_after(code, cwd)}


def _run_cli(*args: str) -> str:
    """Code that runs ``streamkit ARGS`` in-process the way the console script does."""
    return (
        f"sys.argv = ['streamkit', *{list(args)!r}]\n"
        "from streamkit.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
    )


def test_importing_the_cli_imports_no_backend_client_library() -> None:
    loaded = _imported_after("import streamkit.cli.main")
    assert not loaded & set(CLIENT_LIBRARIES), loaded & set(CLIENT_LIBRARIES)
    assert "asyncio" not in loaded


def test_importing_streamkit_loads_the_backend_seam_only_when_a_name_from_it_is_used() -> None:
    assert "asyncio" not in _imported_after("import streamkit")
    assert "streamkit.backends.base" not in _modules_after("import streamkit")
    assert "streamkit.backends.base" in _modules_after("import streamkit; streamkit.Streamer")


def test_importing_streamkit_imports_connect_and_the_errors_only() -> None:
    loaded = _modules_after("import streamkit")
    assert {name for name in loaded if name.startswith("streamkit")} == {
        "streamkit",
        "streamkit.connect",
        "streamkit.errors",
    }
    assert "streamkit.uri" in _modules_after("import streamkit; streamkit.StreamUri")


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_command_module(args: list[str]) -> None:
    loaded = _modules_after(_run_cli(*args))
    assert {name for name in loaded if name.startswith("streamkit.cli.")} == {"streamkit.cli.main"}
    assert "asyncio" not in loaded


def test_decode_imports_neither_asyncio_nor_dateutil(tmp_path: Path) -> None:
    lines = tmp_path / "in.txt"
    lines.write_bytes(b"[2026-01-01T00:00:00.000 | a | 0 | 0] hello\n")
    relay_args = ["relay", "--input", "stdio:///a", "--output", "file://./a.ss/a"]
    relay = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *relay_args],
        stdin=lines.open("rb"),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert relay.returncode == 0, relay.stderr
    loaded = _imported_after(_run_cli("decode", "a.ss"), cwd=tmp_path)
    assert "streamkit" in loaded
    assert not loaded & {"asyncio", "dateutil", *CLIENT_LIBRARIES}


def test_stat_of_a_file_runs_without_an_event_loop(tmp_path: Path) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n[a] two\n")
    code = _run_cli("stat", "a.ss", "--format", "json")
    loaded = _imported_after(code, cwd=tmp_path)
    assert not loaded & {"asyncio", "ssl", *CLIENT_LIBRARIES}
    # ... and still reports the file: the same look the event-loop path gives.
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code], cwd=tmp_path, capture_output=True,
        timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert [s["key"] for s in report["streams"]] == ["a"]
    assert report["streams"][0]["shards"][0]["messages"] == 2


def test_file_and_stdio_relays_import_no_network_client(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"[a] one\n[a] two\n")
    code = "sys.stdin = open('in.txt')\n" + _run_cli(
        "relay", "--input", "stdio:///a", "--output", "file://./b.ss/a"
    )
    loaded = _imported_after(code, cwd=tmp_path)
    assert "asyncio" in loaded  # relay runs on the event loop ...
    assert not loaded & set(CLIENT_LIBRARIES)  # ... but never loads a network client
    assert (tmp_path / "b.ss").stat().st_size > 0


@pytest.mark.parametrize("name", list(cli_main._COMMANDS))
def test_group_help_table_is_each_commands_own_help(name: str) -> None:
    """``streamkit --help`` lists from a static table; it must say what the command says."""
    command = cli_main.cli.get_command(click.Context(cli_main.cli), name)
    assert command is not None and command.help is not None
    own = inspect.cleandoc(command.help).split("\n\n", 1)[0].replace("\n", " ")
    assert cli_main._SHORT_HELP[name] == own
    for limit in (30, 45, 60, 120):
        assert make_default_short_help(cli_main._SHORT_HELP[name], limit) == (
            command.get_short_help_str(limit)
        )


def test_group_help_table_lists_every_command() -> None:
    assert list(cli_main._SHORT_HELP) == list(cli_main._COMMANDS)


SS_CODEC = {"streamkit.formats.ss", "streamkit.formats.ss_decoder", "streamkit.formats.ss_compiled"}
JSON_LINES = {"streamkit.formats.jsonl", "orjson"}


def test_stdio_relay_imports_no_ss_codec_json_lines_or_file_backend() -> None:
    lines = b"[2026-01-01T00:00:00.000 | a | 0 | 0] one\n[a] two\n"
    loaded = _modules_after(_run_cli("relay", "--input", "stdio:///a"), stdin=lines)
    assert "streamkit.backends.stdio" in loaded
    assert not loaded & (SS_CODEC | JSON_LINES | {"streamkit.backends.file", "dateutil"})


@pytest.mark.parametrize("flag", ["--input-format", "--output-format"])
def test_json_lines_are_imported_when_asked_for(flag: str) -> None:
    line = b'{"topic":"a","payload":1}\n' if flag == "--input-format" else b"[a] one\n"
    loaded = _modules_after(_run_cli("relay", flag, "json"), stdin=line)
    assert loaded >= JSON_LINES
    assert not loaded & SS_CODEC


def test_file_relays_import_the_stdio_backend_only_for_a_stdio_side(tmp_path: Path) -> None:
    to_file = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    loaded = _modules_after(to_file, cwd=tmp_path, stdin=b"[a] one\n")
    assert "streamkit.formats.ss_encoder" in loaded
    assert not loaded & JSON_LINES
    file_to_file = _run_cli("relay", "--input", "file://./a.ss/a", "--output", "file://./b.ss/a")
    loaded = _modules_after(file_to_file, cwd=tmp_path)
    assert (tmp_path / "b.ss").stat().st_size > 0
    assert not {name for name in loaded if name.startswith("streamkit.backends.stdio")}
    assert not loaded & JSON_LINES


def test_decode_imports_the_json_printer_only_for_json_formats(tmp_path: Path) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b'[a] {"x": 1}\n')
    ndjson = "streamkit.formats.printing.ndjson"
    log = _modules_after(_run_cli("decode", "a.ss"), cwd=tmp_path)
    assert "streamkit.formats.printing.log" in log
    assert not log & {ndjson, "orjson"}
    assert {ndjson, "orjson"} <= _modules_after(
        _run_cli("decode", "a.ss", "--format", "ndjson"), cwd=tmp_path
    )


def test_stat_of_a_file_reads_without_encoder_thread_pool_fastcrc_or_positions(
    tmp_path: Path,
) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n[a] two\n")
    loaded = _modules_after(_run_cli("stat", "file://./a.ss"), cwd=tmp_path)
    assert "streamkit.backends.file.scan" in loaded
    assert not loaded & {
        "streamkit.formats.ss_encoder",
        "streamkit.formats.ss_compiled_encoder",
        "streamkit.backends.file.positions",
        "concurrent.futures.thread",
        "hashlib",
        "glob",
        "fastcrc",
    }


def test_stat_of_a_file_imports_positions_when_a_group_has_one(tmp_path: Path) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n[a] two\n")
    (tmp_path / "a.ss.audit.pos").write_text("{}")
    loaded = _modules_after(_run_cli("stat", "file://./a.ss"), cwd=tmp_path)
    assert "streamkit.backends.file.positions" in loaded


@pytest.mark.parametrize("command", [["decode", "a.ss"], ["verify", "a.ss"]])
def test_reading_commands_import_no_encoder_or_fastcrc(tmp_path: Path, command: list[str]) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n")
    loaded = _modules_after(_run_cli(*command), cwd=tmp_path)
    assert "streamkit.formats.ss_decoder" in loaded
    assert not loaded & {"streamkit.formats.ss_encoder", "fastcrc"}


def test_the_pure_codec_still_uses_fastcrc() -> None:
    code = (
        "import os; os.environ['STREAMKIT_PURE_PYTHON'] = '1'\n"
        "from streamkit.formats.crc16 import crc16\n"
        "assert crc16(b'123456789') == 0x4C06\n"
    )
    assert "fastcrc" in _imported_after(code)


def test_a_file_to_stdio_relay_loads_no_writer_encoder_or_positions(tmp_path: Path) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n")
    to_stdio = _run_cli("relay", "--input", "file://./a.ss/a", "--output", "stdio:///a")
    loaded = _modules_after(to_stdio, cwd=tmp_path)
    assert "streamkit.backends.file.consumer" in loaded
    assert not loaded & {
        "streamkit.backends.file.writer",
        "streamkit.backends.file.producer",
        "streamkit.backends.file.positions",
        "streamkit.formats.ss_encoder",
        "hashlib",
        "fastcrc",
    }


def test_a_stdio_to_file_relay_loads_no_consumer_or_hashlib(tmp_path: Path) -> None:
    relay = _run_cli("relay", "--input", "stdio:///a", "--output", "file://./a.ss/a")
    loaded = _modules_after(relay, cwd=tmp_path, stdin=b"[a] one\n")
    assert (tmp_path / "a.ss").stat().st_size > 0
    assert "streamkit.backends.file.writer" in loaded
    assert not loaded & {"streamkit.backends.file.consumer", "hashlib", "fastcrc"}
