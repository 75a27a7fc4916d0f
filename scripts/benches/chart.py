"""The chart of docs/benchmarks.md: every ratio streamkit was measured at against its yardstick
(SeaStreamer's tools, kcat, redis-benchmark, a Python pass-through loop, a plain relay), as one
horizontal bar chart, written next to the tables by ``scripts/bench --record``.

The numbers are read back from the markdown the bench parts printed, so the chart can never
disagree with the tables: rows of the "ratio (same run)" tables, and the streamkit rows of tables
whose last column compares with a reference ("vs kcat", "vs redis-benchmark"). Needs matplotlib
(``pip install -e '.[bench]'``); without it the bench says so and records the tables alone.

    python scripts/benches/chart.py docs/benchmarks.md docs/benchmarks.png
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_NUMBER = re.compile(r"^\**\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*x?\s*\**$")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def ratios(markdown: str) -> list[tuple[str, float]]:
    """(label, ratio) for every comparison the tables hold, in the order they appear."""
    found: list[tuple[str, float]] = []
    section = ""
    header: list[str] | None = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            header = None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the |---|---| line
        last = header[-1].lower()
        # A ratio table's bold figure is its second column (the stdio one adds median, CPU and
        # net-of-start-up columns after it); other tables compare in their last column.
        is_ratio = header[0].lower().startswith("ratio") and len(cells) > 1
        match = _NUMBER.match(cells[1] if is_ratio else cells[-1])
        if match is None:
            continue
        value = float(match.group(1).replace(",", ""))
        if is_ratio:
            label = re.sub(r"\s*\(target[^)]*\)", "", cells[0])
        elif last.startswith("vs ") and any("streamkit" in c or "relay" in c for c in cells[:-1]):
            if "reference" in cells[0] or last[3:] in " ".join(cells[:-1]).lower():
                continue  # the yardstick's own row (1.00 by definition)
            label = f"{section}: " + " ".join(c for c in cells[:2] if not c[:1].isdigit())
        else:
            continue
        found.append((label, value))
    return found


def draw(found: list[tuple[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label if len(label) <= 64 else label[:61] + "..." for label, _ in found]
    values = [value for _, value in found]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(found) + 1.2))
    ax.barh(range(len(found)), values, color=["#2a7" if v >= 1 else "#c73" for v in values])
    ax.set_yticks(range(len(found)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("ratio to the yardstick measured in the same run (log scale; 1 = equal)")
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:g}", va="center", fontsize=7)
    ax.set_title("streamkit against its references (docs/benchmarks.md)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("markdown", type=Path)
    parser.add_argument("image", type=Path)
    args = parser.parse_args()
    found = ratios(args.markdown.read_text(encoding="utf-8"))
    if not found:
        print("chart: no ratios found in the tables", file=sys.stderr)
        return 1
    try:
        draw(found, args.image)
    except ImportError:
        print("chart: matplotlib is missing (pip install -e '.[bench]'); no chart", file=sys.stderr)
        return 1
    print(f"chart: {len(found)} ratios drawn in {args.image}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
