"""Extract the few JASPAR matrices that ``attnlab/data/jaspar/`` ships.

The book never runs this script and nothing downloads at run or build time: the
matrices it writes are committed. It reads the SQLite database that the ``pyjaspar``
wheel ships (JASPAR 2024, the latest public release in pyjaspar 4.0.0; its JASPAR2026
file is marked there as "for peer-review purpose only"). To run it again::

    pip download --no-deps pyjaspar==4.0.0 -d /tmp/pyjaspar
    unzip -q /tmp/pyjaspar/pyjaspar-4.0.0-py3-none-any.whl -d /tmp/pyjaspar/x
    python tools/extract_jaspar.py /tmp/pyjaspar/x/pyjaspar/data/JASPAR2024.sqlite

(or ``pip install pyjaspar==4.0.0`` and pass no path: the database is then found in the
installed package). It writes one ``<ID>.jaspar`` file per matrix, in JASPAR's own text
format (counts), into ``attnlab/data/jaspar/``.

JASPAR's data are licensed CC BY 4.0; cite Rauluseviciute et al. (2024), "JASPAR 2024:
20th anniversary of the open-access database of transcription factor binding
profiles", Nucleic Acids Research 52(D1):D174-D182, doi:10.1093/nar/gkad1059.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

# the matrices, by JASPAR ID (matrix ID and version): well-known vertebrate factors
# whose lengths (7 to 20 bases) fit the book's sequences of 80-120 bases
IDS = ("MA0139.2", "MA0080.7", "MA0035.5", "MA0138.3")
OUT = Path(__file__).resolve().parents[1] / "attnlab" / "data" / "jaspar"


def find_db() -> Path:
    spec = importlib.util.find_spec("pyjaspar")
    if spec is None or spec.origin is None:
        sys.exit("pyjaspar is not installed: pass the path of JASPAR2024.sqlite")
    return Path(spec.origin).parent / "data" / "JASPAR2024.sqlite"


def main() -> None:
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else find_db()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    OUT.mkdir(parents=True, exist_ok=True)
    for jaspar_id in IDS:
        base, version = jaspar_id.split(".")
        row = con.execute("SELECT ID, NAME FROM MATRIX WHERE COLLECTION = 'CORE' "
                          "AND BASE_ID = ? AND VERSION = ?", (base, int(version))).fetchone()
        if row is None:
            sys.exit(f"{jaspar_id} is not in {db}")
        internal, name = row
        lines = [f">{jaspar_id}\t{name}"]
        for base_letter in "ACGT":
            vals = [v for (v,) in con.execute(
                "SELECT val FROM MATRIX_DATA WHERE ID = ? AND row = ? ORDER BY col",
                (internal, base_letter))]
            lines.append(f"{base_letter}  [ " + " ".join(f"{v:g}" for v in vals) + " ]")
        (OUT / f"{jaspar_id}.jaspar").write_text("\n".join(lines) + "\n")
        print(f"{jaspar_id} {name}: {len(vals)} positions")


if __name__ == "__main__":
    main()
