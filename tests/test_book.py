"""The book builds from a clean state, warnings as errors, and renders what it should."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import ROOT, notebooks, run, tool


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    return files


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    listed = toc_files()
    for f in listed:
        assert (ROOT / f"{f}.md").exists() or (ROOT / f"{f}.ipynb").exists(), f"{f} is in _toc.yml"
    for nb in ROOT.glob("chapters/*.ipynb"):
        assert f"chapters/{nb.stem}" in listed, f"{nb.name} is missing from _toc.yml"


def test_book_builds_every_page(html):
    assert (html / "index.html").exists()
    for f in toc_files():
        assert (html / f"{f}.html").exists(), f"no page for {f}"


def test_chapter_pages_show_the_committed_outputs_and_launch_buttons(html):
    for nb in notebooks():
        if nb.parent.name != "chapters":
            continue
        page = (html / "chapters" / f"{nb.stem}.html").read_text()
        assert "mybinder.org/v2/gh/" in page and f"{nb.name}" in page, "Binder button"
        assert "colab.research.google.com/github/" in page, "Colab button"
        assert "hub/user-redirect/git-pull" in page, "JupyterHub button"
        assert 'class="output' in page or "cell_output" in page, "outputs rendered"
    page = (html / "chapters" / "01_softmax.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert "0.1617" in text and "0.2511" in text


def test_api_reference_is_rendered_from_docstrings(html):
    page = (html / "book" / "api.html").read_text()
    for name in ("attnlab.functional.attention", "attnlab.functional.softmax",
                 "attnlab.masks.causal_mask", "attnlab.masks.padding_mask",
                 "attnlab.utils.pick_device", "attnlab.plot.heatmap",
                 "attnlab.masks.window_mask", "attnlab.layers.RMSNorm",
                 "attnlab.layers.SwiGLU", "attnlab.layers.RollingKVCache"):
        assert f'id="{name}"' in page, f"{name} is missing from the API reference"


def test_bibliography_lists_the_cited_papers(html):
    page = (html / "book" / "bibliography.html").read_text()
    for author in ("Vaswani", "Bahdanau", "Luong"):
        assert author in page


def test_exercises_page_lists_every_set_and_each_set_is_a_page():
    page = (ROOT / "book" / "exercises.md").read_text()
    listed = toc_files()
    for bundle in sorted((ROOT / "attnlab" / "grading" / "bundles").iterdir()):
        meta = json.loads((bundle / "set.json").read_text())
        assert f"{{doc}}`../exercises/{meta['name']}`" in page, f"{meta['name']} not listed"
        assert meta["practises"] in page, f"what {meta['name']} practises is not on the page"
        assert f"exercises/{meta['name']}" in listed, f"{meta['name']} missing from _toc.yml"


def test_each_chapter_with_exercises_links_to_them():
    for bundle in sorted((ROOT / "attnlab" / "grading" / "bundles").iterdir()):
        chapter = ROOT / "chapters" / f"{bundle.name}.ipynb"
        if chapter.exists():
            text = "".join("".join(c["source"]) for c in json.loads(chapter.read_text())["cells"]
                           if c["cell_type"] == "markdown")
            assert f"{{doc}}`../exercises/{bundle.name}`" in text, f"{chapter.name}: no link"


def test_the_site_is_ready_for_static_hosting(html):
    import attnlab

    assert (html / ".nojekyll").exists(), "GitHub Pages must serve _static/ as it is"
    page = (html / "404.html").read_text()
    assert 'href="/attention-lab/' in page, "the 404 page links from the site's root"
    intro = (html / "book" / "intro.html").read_text()
    assert f"Attention Lab {attnlab.__version__}" in intro, "the version in the footer"
    assert "CC BY-SA 4.0" in intro and "MIT" in intro, "the licences in the footer"


def test_the_chapter_template_runs_top_to_bottom(tmp_path):
    template = ROOT / "book" / "templates" / "chapter.ipynb"
    proc = run([tool("jupyter"), "nbconvert", "--to", "notebook", "--execute", "--output-dir",
                str(tmp_path), str(template)], env={"MPLBACKEND": "Agg"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads((tmp_path / "chapter.ipynb").read_text())["cells"]
    assert cells[1]["id"] == "attnlab-setup" and cells[0]["source"][0].startswith("(ch-")
    assert not [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]
                if o["output_type"] == "error"]


def test_every_figure_has_alt_text():
    """Screen readers read the alt text: every figure of a chapter says what it shows."""
    missing = []
    for nb in sorted(ROOT.glob("chapters/*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
                if len(alt.split()) < 8:
                    missing.append(f"{nb.name}: cell {cell['id']}")
    assert missing == [], "figures without alt text (cell metadata mystnb.image.alt)"


def test_every_chapter_page_says_how_to_run_it_and_links_its_exercises(html):
    for nb in sorted(ROOT.glob("chapters/*.ipynb")):
        page = (html / "chapters" / f"{nb.stem}.html").read_text()
        assert "run-it-locally" in page and f"chapters/{nb.stem}.ipynb" in page, nb.name
        if (ROOT / "exercises" / nb.name).exists():
            assert f"../exercises/{nb.stem}.html" in page, f"{nb.name}: no exercise link"


def test_the_chapters_link_attnlab_names_to_the_api_reference(html):
    bare = re.compile(r"(?<![\w}])`attnlab(?:\.\w+)+(?:\(\))?`")  # not after {py:obj}
    for nb in sorted(ROOT.glob("chapters/*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                found = bare.findall("".join(cell["source"]))
                assert not found, f"{nb.name}: write {{py:obj}}`...` for {found}"
    linked = [p.name for p in (html / "chapters").glob("*.html")
              if 'href="../book/api.html#attnlab.' in p.read_text()]
    assert len(linked) >= 12, linked


def test_every_chapter_downloads_as_ipynb_and_myst_markdown(html):
    for nb in sorted(ROOT.glob("chapters/*.ipynb")):
        page = (html / "chapters" / f"{nb.stem}.html").read_text()
        for suffix in (".ipynb", ".md"):
            assert f'href="../_sources/chapters/{nb.stem}{suffix}"' in page, (nb.name, suffix)
        md = (html / "_sources" / "chapters" / f"{nb.stem}.md").read_text()
        cells = json.loads(nb.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert md.startswith("---\njupytext:") and md.count("```{code-cell} ipython3") == len(code)
        assert "".join(code[-1]["source"]) in md


REAL_DATA = ("movielens", "electricity", "speech", "motifs", "digits")


@pytest.mark.parametrize("module", REAL_DATA)
def test_real_data_names_its_source_licence_and_citation(module):
    """A loader of real data says where the data comes from, its licence, and whom to cite,
    with keys of book/references.bib that the book's data page cites."""
    import importlib

    doc = importlib.import_module(f"attnlab.data.{module}").__doc__
    assert re.search(r"\bsource\b|comes from", doc, re.I), module
    assert re.search(r"licen[cs]e", doc, re.I), module
    assert re.search(r"\bcit(e|ation)\b", doc, re.I), module
    bib = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    keys = set(re.findall(r"``([a-z]+\d{4}[a-z]*|espeakng)``", doc)) & bib
    assert keys, f"attnlab.data.{module} names no key of book/references.bib"
    page = (ROOT / "book" / "data.md").read_text()
    assert any(k in page for k in keys), f"book/data.md cites none of {sorted(keys)}"
