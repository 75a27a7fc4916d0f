"""Fixtures of the fault suite, and the figures it prints at the end of a run.

Every test here is marked ``faults`` (``pytest -m faults`` runs the suite alone; ``scripts/test``
runs it with the rest). The figures are the sums ``harness.record`` collected; with
``STREAMKIT_FAULT_FIGURES=PATH`` they are also written to PATH, as a markdown table if PATH ends
in ``.md``, else as JSON (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.damage import Sample
from tests.faults.harness import FIGURES, Cli, layout, message_lines, write_sample


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """Runs ``streamkit ARGS`` in forked children of one warm interpreter (harness.Cli)."""
    runner = Cli(tmp_path_factory.mktemp("cli"))
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Sample:
    """The intact sample file (harness.write_sample), its layout and its decoded lines."""
    path = tmp_path_factory.mktemp("sample") / "sample.ss"
    write_sample(path)
    result = cli.run("decode", str(path))
    assert result.code == 0, result.stderr
    lines = message_lines(result.stdout)
    assert len(lines) == 600
    data = path.read_bytes()
    shape = layout(data)
    assert len(shape.messages) == 600 and len(shape.beacons) > 50
    return Sample(path, data, shape, lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault figures")
    for section, counts in sorted(FIGURES.items()):
        numbers = ", ".join(f"{k}={v}" for k, v in counts.items())
        terminalreporter.write_line(f"{section}: {numbers}")
    target = os.environ.get("STREAMKIT_FAULT_FIGURES")
    if target:
        data = {section: dict(counts) for section, counts in sorted(FIGURES.items())}
        if target.endswith(".md"):
            rows = ["| fault | cases | counts |", "|---|---:|---|"]
            for section, counts in data.items():
                rest = ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "cases")
                rows.append(f"| {section} | {counts['cases']} | {rest} |")
            Path(target).write_text("\n".join(rows) + "\n")
        else:
            Path(target).write_text(json.dumps(data, indent=1) + "\n")
