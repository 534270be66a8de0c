"""The setup cell every notebook starts with: installs ``attnlab`` only where it is missing.

A reader who opens a chapter in Colab (or any fresh environment) runs the first
code cell and gets ``attnlab`` from the project's repository; where ``attnlab``
is importable (a local clone, CI, Binder, the grader's sandbox) the cell does
nothing and prints nothing, so re-executed notebooks still match their
committed outputs. It never reinstalls torch: ``attnlab`` asks for ``torch>=2.4``,
which the torch already there satisfies.

Run ``python -m attnlab.setup_cell NOTEBOOK...`` to add or refresh the cell in
notebooks (``attnlab exercises build`` adds it to the exercise notebooks itself).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["CELL_ID", "REPOSITORY", "SOURCE", "setup_cell", "has_setup_cell", "add_setup_cell"]

CELL_ID = "attnlab-setup"
REPOSITORY = "https://github.com/attention-lab/attention-lab"
# (lines of at most 79 characters, like every chapter's code; IPython fills {repo} in)
SOURCE = f"""\
# Setup: installs attnlab where it is missing (Colab, a fresh environment);
# elsewhere a no-op.
try:
    import attnlab  # noqa: F401
except ImportError:
    repo = "{REPOSITORY}"
    %pip install --quiet "attnlab @ git+{{repo}}@main"
    print("installed attnlab from", repo)"""


def setup_cell() -> dict[str, Any]:
    """The cell as nbformat 4.5 JSON (hidden from the rendered book by its tag)."""
    return {"cell_type": "code", "execution_count": None, "id": CELL_ID,
            "metadata": {"tags": ["remove-cell"]}, "outputs": [],
            "source": SOURCE.splitlines(keepends=True)}


def _text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def has_setup_cell(nb: dict[str, Any]) -> bool:
    """Whether the notebook's first code cell is exactly the setup cell."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    return bool(code) and code[0].get("id") == CELL_ID and _text(code[0]) == SOURCE


def add_setup_cell(nb: dict[str, Any]) -> bool:
    """Put the setup cell before the first code cell (replacing an old one).

    Returns:
        Whether the notebook changed.
    """
    if has_setup_cell(nb):
        return False
    cells = [c for c in nb.get("cells", []) if c.get("id") != CELL_ID]
    first_code = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"),
                      len(cells))
    cells.insert(first_code, setup_cell())
    nb["cells"] = cells
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
    return True


def main(argv: list[str] | None = None) -> int:
    """Add or refresh the setup cell in the notebooks named on the command line."""
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m attnlab.setup_cell NOTEBOOK...", file=sys.stderr)
        return 2
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if add_setup_cell(nb):
            path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                            encoding="utf-8")
            print(f"{path}: setup cell added")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
