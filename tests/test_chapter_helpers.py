"""The chapters import attnlab's helpers instead of writing their own copies.

A chapter may write a function from scratch to teach it, then prove it equal to attnlab's
version; such a cell says so with a comment ``# from scratch: proved equal to attnlab.X``
(the X it is compared with). Any other top-level ``def`` or ``class`` in a chapter whose
name attnlab also defines is a copy, and fails this test.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"#\s*from scratch: proved equal to (attnlab(?:\.\w+)+)")


def _attnlab_names() -> dict[str, list[str]]:
    """Every public top-level function and class of attnlab -> the modules that define it."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "attnlab").rglob("*.py")):
        if "bundles" in path.parts:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and not node.name.startswith("_")):
                names.setdefault(node.name, []).append(module)
    return names


def _code(cell: dict) -> str:
    # IPython magics and shell lines are not Python; the rest of the cell is.
    lines = "".join(cell["source"]).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def chapter_definitions() -> list[tuple[str, str, str]]:
    """(notebook, name, cell source) for every top-level def and class in the chapters."""
    found = []
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = _code(cell)
            for node in ast.parse(source).body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found.append((nb.name, node.name, source))
    return found


def test_the_chapters_define_no_copy_of_an_attnlab_helper():
    ours = _attnlab_names()
    copies = []
    for nb, name, source in chapter_definitions():
        if name not in ours:
            continue
        marked = {m.split(".")[-1] for m in MARK.findall(source)}
        if name not in marked:
            copies.append(f"{nb}: {name} (attnlab has it in {', '.join(ours[name])})")
    assert not copies, (
        "import these from attnlab, or mark a from-scratch version that the chapter proves "
        "equal with '# from scratch: proved equal to attnlab.X':\n" + "\n".join(copies))


def test_a_from_scratch_mark_names_a_real_attnlab_object_that_the_chapter_compares():
    import importlib

    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = "\n".join(_code(c) for c in json.loads(nb.read_text())["cells"]
                         if c["cell_type"] == "code")
        for target in MARK.findall(text):
            module, _, attr = target.rpartition(".")
            assert hasattr(importlib.import_module(module), attr), f"{nb.name}: {target}?"
            assert "assert_close" in text or "assert_equal" in text, (
                f"{nb.name} marks {target} as proved equal but compares nothing")


def test_the_scan_finds_definitions_and_the_mark():
    names = {(nb, name) for nb, name, _ in chapter_definitions()}
    assert ("03_scoring_functions.ipynb", "general_scores") in names
    assert MARK.findall("# from scratch: proved equal to attnlab.functional.softmax below") == [
        "attnlab.functional.softmax"]
