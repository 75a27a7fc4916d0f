"""The public API is exactly ``streamkit.__all__``: pinned here, importable, and documented.

Adding or removing a public name is a decision: it fails here until this list, the docstring
and docs/api.md (``scripts/api-doc --write``) say so together.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import streamkit

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = [
    "BackendError",
    "ConnectError",
    "ConnectOptions",
    "Consumer",
    "ConsumerOptions",
    "DataError",
    "EndOfStream",
    "Join",
    "Message",
    "Producer",
    "ProducerOptions",
    "StreamUri",
    "Streamer",
    "StreamkitError",
    "UsageError",
    "__version__",
    "connect",
    "join",
    "parse_stream_uri",
    "parse_streamer_uri",
]


def test_all_is_pinned() -> None:
    assert streamkit.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports_in_a_fresh_interpreter(name: str) -> None:
    """``from streamkit import X`` works whether X is imported eagerly or on first use."""
    done = subprocess.run(
        [sys.executable, "-c", f"from streamkit import {name}; print(type({name}).__name__)"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip()


def test_lazy_names_are_the_objects_their_modules_define() -> None:
    from streamkit.backends import base

    join_module = importlib.import_module("streamkit.replay.join")  # the package hides it

    assert streamkit.Streamer is base.Streamer
    assert streamkit.ConsumerOptions is base.ConsumerOptions
    assert streamkit.Join is join_module.Join
    assert streamkit.join is join_module.join
    assert callable(streamkit.connect)  # the function, not the streamkit.connect module


def test_connect_stays_the_function_after_its_module_is_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import streamkit.connect, streamkit; print(streamkit.connect)"],
        capture_output=True,
        timeout=60,
    )
    assert done.stdout.decode().startswith("<function connect"), done


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = streamkit.no_such_name  # type: ignore[attr-defined]


def test_dir_lists_every_public_name() -> None:
    assert set(PUBLIC) <= set(dir(streamkit))


@pytest.mark.parametrize("name", [name for name in PUBLIC if name != "__version__"])
def test_every_public_name_says_what_it_is_for(name: str) -> None:
    obj = getattr(streamkit, name)
    assert len(inspect.getdoc(obj) or "") > 20, f"{name} needs a docstring"
    if not inspect.isclass(obj) or issubclass(obj, BaseException):
        return
    for member, value in vars(obj).items():
        if member.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        assert inspect.getdoc(value), f"{name}.{member} needs a docstring"


def _api_doc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api-doc"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docs_api_md_is_what_scripts_api_doc_writes() -> None:
    done = _api_doc("--check")
    assert done.returncode == 0, done.stderr + "(run scripts/api-doc --write)"
    assert _api_doc().stdout == (ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_a_section_in_docs_api_md(name: str) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    assert f"### `{name}`" in text


@pytest.mark.parametrize(
    "cls", [streamkit.ConnectOptions, streamkit.ConsumerOptions, streamkit.ProducerOptions]
)
def test_every_option_field_is_explained_in_docs_api_md(cls: type) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split(f"### `{cls.__name__}`", 1)[1].split("\n### ", 1)[0]
    for item in dataclasses.fields(cls):
        row = next(line for line in section.splitlines() if line.startswith(f"| `{item.name}` |"))
        meaning = row.rstrip(" |").rsplit("|", 1)[1].strip()
        assert len(meaning) > 10, f"{cls.__name__}.{item.name} needs a docstring under it"


def test_check_fails_when_docs_api_md_is_stale(tmp_path: Path) -> None:
    """--check compares with the committed file, so a docstring change without --write fails."""
    copy = tmp_path / "tree"
    (copy / "scripts").mkdir(parents=True)
    (copy / "docs").mkdir()
    (copy / "scripts" / "api-doc").write_text((ROOT / "scripts" / "api-doc").read_text())
    (copy / "docs" / "api.md").write_text("# stale\n")
    done = subprocess.run(
        [sys.executable, str(copy / "scripts" / "api-doc"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "docs/api.md is out of date" in done.stderr
