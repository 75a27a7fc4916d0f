"""scripts/benches/chart.py reads the ratios back from the tables the bench printed (issue 16:
the chart of docs/benchmarks.md can never disagree with its tables)."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ratios = runpy.run_path(str(ROOT / "scripts" / "benches" / "chart.py"))["ratios"]

TABLES = """\
## stdio

| input | program | lines/s | ÷ pass-through loop |
|---|---|---:|---:|
| 4-field lines | cat | 23,820,298 | 13.04 |

| ratio (same run) | value |
|---|---:|
| relay 4-field lines, default URIs ÷ pass-through loop (target ≥ 0.9) | **1.76** |
| decode ÷ SeaStreamer file-ss-decode (target ≥ 4) | **8.60** |

## kafka

| path | program | messages | seconds | msgs/s | vs kcat |
|---|---|---:|---:|---:|---:|
| produce (stdin → kafka) | kcat -P | 1,000,000 | 1.11 | 898,091 | 1.00 |
| produce (stdin → kafka) | streamkit relay | 1,000,000 | 1.68 | 594,741 | 0.66 |

## redis

| path | messages | seconds | msgs/s | vs redis-benchmark |
|---|---:|---:|---:|---:|
| redis-benchmark XADD -P 1000 -c 1 (reference) | 1,000,000 | 2.09 | 477,555 | 1.00 |
| relay stdio → redis | 1,000,000 | 3.30 | 302,629 | 0.63 |
"""


def test_ratio_tables_and_streamkit_rows_against_references() -> None:
    assert ratios(TABLES) == [
        ("relay 4-field lines, default URIs ÷ pass-through loop", 1.76),
        ("decode ÷ SeaStreamer file-ss-decode", 8.6),
        ("kafka: produce (stdin → kafka) streamkit relay", 0.66),
        ("redis: relay stdio → redis", 0.63),
    ]


def test_the_recorded_page_has_ratios_to_draw() -> None:
    found = ratios((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))
    labels = " ".join(label for label, _ in found)
    assert "SeaStreamer" in labels and "kafka" in labels and "redis" in labels


def test_a_ratio_table_with_more_columns_draws_its_bold_figure() -> None:
    table = """\
## stdio

| ratio (same run) | wall, best | wall, median of rounds | CPU, best | wall net of start-up |
|---|---:|---:|---:|---:|
| relay keyed ÷ default URIs (target ≥ 0.9) | **0.97** | 0.93 | 0.95 | 0.95 |
| relay 3-field ÷ SeaStreamer stdio-relay (target ≥ 3) | **15.30** | 14.75 | — | — |
"""
    assert ratios(table) == [
        ("relay keyed ÷ default URIs", 0.97),
        ("relay 3-field ÷ SeaStreamer stdio-relay", 15.3),
    ]
