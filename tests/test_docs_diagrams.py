"""The Mermaid pictures in the docs name only what exists, and the layer picture is the imports.

A renamed class, a moved module or a new import that runs back up fails here, so the pictures
are changed with the code. What is checked, in every ```mermaid block of README.md and docs/:

- a dotted ``streamkit.x.y`` imports (a module, or an attribute of one);
- a source path (``pipeline/flow.py``, ``formats/_speedups_scan.c``) exists under streamkit/;
- in a node whose label names source files, every capitalised name (``Window``, ``RoundRobin``)
  and every ``name(`` call is defined in one of those files; ``consumer.x``/``producer.x`` are
  members of ``Consumer``/``Producer``; ``A -.- B`` between two such nodes: B subclasses A;
- the layer picture (nodes labelled ``streamkit.x``): every solid arrow is an import in the code,
  and every import between two of its nodes follows its arrows (no import runs back up unseen).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

import pytest

import streamkit
from tests.docs_examples import extract

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "streamkit"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

NODE = re.compile(r"\b(\w+)\s*(?:\[\[|\[\(|\(\[|\{\{|\[|\(|\{)\"(?P<label>[^\"]*)\"")
EDGE = re.compile(
    r"^\s*(?P<a>\w+(?:\s*&\s*\w+)*)\s*(?P<kind>-->|---|-\.->|-\.-|==>|--\s*\"[^\"]*\"\s*-->"
    r"|-\.\s*\"[^\"]*\"\s*\.->|-\.\s*\"[^\"]*\"\s*\.-)\s*(?P<b>\w+(?:\s*&\s*\w+)*)"
)
DOTTED = re.compile(r"\bstreamkit(?:\.\w+)+")
SOURCE = re.compile(r"(?<![\w/.])(?:\w+/)*\w+\.(?:py|c)\b")
CAPITALISED = re.compile(r"\b[A-Z][a-z]\w*\b")
CALL = re.compile(r"(?<![.\w])([a-z_]\w*)\(")
MEMBER = re.compile(r"(?<![/\w])(consumer|producer)\.(\w+)")


def _diagrams() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```mermaid\n(.*?)^```", text, re.M | re.S):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


DIAGRAMS = _diagrams()


def _labels(diagram: str) -> dict[str, str]:
    return {match.group(1): match.group("label") for match in NODE.finditer(diagram)}


def _edges(diagram: str) -> list[tuple[str, str, bool]]:
    """(from, to, solid) for every link; ``a & b --> c`` is two links."""
    edges = []
    for line in diagram.splitlines():
        for chain in _chain(line):
            a, kind, b = chain
            solid = "." not in kind
            edges.extend((x.strip(), y.strip(), solid) for x in a.split("&") for y in b.split("&"))
    return edges


def _chain(line: str) -> list[tuple[str, str, str]]:
    """``a --> b --> c`` as (a, -->, b), (b, -->, c); node shapes and labels dropped first."""
    plain = NODE.sub(lambda m: m.group(1), line.split("%%")[0])
    plain = re.sub(
        r"(\w)\s*(?:\[\[|\[\(|\(\[|\{\{|\[|\(|\{)[^\"]*?(?:\]\]|\)\]|\]\)|\}\}|\]|\)|\})",
        r"\1",
        plain,
    )
    links = []
    while True:
        match = EDGE.match(plain)
        if not match:
            return links
        links.append((match.group("a"), match.group("kind"), match.group("b")))
        plain = plain[match.start("b") :]


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_there_are_diagrams_to_check() -> None:
    where = {name.split(":")[0] for name, _ in DIAGRAMS}
    assert {"docs/architecture.md", "docs/processor.md"} <= where
    assert all(_edges(diagram) for _, diagram in DIAGRAMS)


@pytest.mark.parametrize(("where", "diagram"), DIAGRAMS, ids=[name for name, _ in DIAGRAMS])
def test_named_modules_files_and_classes_exist(where: str, diagram: str) -> None:
    for dotted in DOTTED.findall(diagram):
        assert _resolves(dotted), f"{where}: {dotted} does not exist"
    for source in SOURCE.findall(diagram):
        assert (PACKAGE / source).is_file(), f"{where}: streamkit/{source} does not exist"
    for node, label in _labels(diagram).items():
        files = [PACKAGE / source for source in SOURCE.findall(label)]
        if files:
            text = label.split("<br/>")[0]
            defined = set().union(*(_defined(path) for path in files if path.suffix == ".py"))
            for name in CAPITALISED.findall(text) + CALL.findall(text):
                assert name in defined, f"{where}: {node}: {name} is not in {label!r}"
    for owner, member in MEMBER.findall(diagram):
        cls = streamkit.Consumer if owner == "consumer" else streamkit.Producer
        assert hasattr(cls, member), f"{where}: {cls.__name__} has no {member}"


@pytest.mark.parametrize(("where", "diagram"), DIAGRAMS, ids=[name for name, _ in DIAGRAMS])
def test_dotted_links_between_classes_are_subclasses(where: str, diagram: str) -> None:
    labels = _labels(diagram)
    for a, b, solid in _edges(diagram):
        if solid or a not in labels or b not in labels:
            continue
        classes = []
        for node in (a, b):
            name = labels[node].split("<br/>")[0]
            files = SOURCE.findall(labels[node])
            if not (files and re.fullmatch(r"[A-Z]\w*", name)):
                break
            module = "streamkit." + files[0].removesuffix(".py").replace("/", ".")
            classes.append(getattr(importlib.import_module(module), name))
        if len(classes) == 2:
            assert issubclass(classes[1], classes[0]), f"{where}: {b} is not a {a}"


def _imports() -> dict[str, set[str]]:
    """Module → the streamkit modules it imports, at any depth but not under TYPE_CHECKING."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found[module].add(node.module)
            elif isinstance(node, ast.Import):
                found[module].update(alias.name for alias in node.names)
    return found


def _layer_diagram() -> tuple[str, str]:
    for where, diagram in DIAGRAMS:
        if where.startswith("docs/architecture.md") and 'errors["streamkit.errors"]' in diagram:
            return where, diagram
    raise AssertionError("docs/architecture.md has no layer diagram")


def test_layer_diagram_is_the_import_graph() -> None:
    where, diagram = _layer_diagram()
    nodes = {
        node: label.split()[0]
        for node, label in _labels(diagram).items()
        if label.startswith("streamkit")
    }

    def node_of(module: str) -> str | None:
        best = None
        for node, prefix in nodes.items():
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(nodes[best])
            ):
                best = node
        return best

    arrows: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in _edges(diagram):
        arrows[a].add(b)
    real: set[tuple[str, str]] = set()
    for module, targets in _imports().items():
        if module == "streamkit.__main__":  # `python -m streamkit`: the CLI's entry point
            continue
        source = node_of(module)
        assert source is not None, f"{where}: no node for {module}: add it to the picture"
        for target in targets:
            if target.split(".")[0] != "streamkit":
                continue
            goal = node_of(target)
            if goal is not None and goal != source:
                real.add((source, goal))

    for a, b, solid in _edges(diagram):
        if solid:
            assert (a, b) in real, f"{where}: {a} --> {b} is drawn but {nodes[a]} never imports it"

    def reaches(a: str, b: str) -> bool:
        seen, todo = {a}, [a]
        while todo:
            for step in arrows[todo.pop()]:
                if step == b:
                    return True
                if step not in seen:
                    seen.add(step)
                    todo.append(step)
        return False

    for a, b in sorted(real):
        assert reaches(a, b), f"{where}: {nodes[a]} imports {nodes[b]} but no arrow path says so"


def test_docs_examples_do_not_run_mermaid_blocks() -> None:
    for path in DOCS:
        assert all(block.lang != "mermaid" for block in extract(path))
    assert any("```mermaid" in path.read_text() for path in DOCS)
