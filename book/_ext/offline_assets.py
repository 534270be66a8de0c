"""The built site reads offline, and every chapter page says how to run it locally.

MathJax and mermaid are served from the site itself, not from a CDN. Both come from Python
packages that ``requirements.txt`` installs: MathJax 3 from
``django-static-mathjax`` (its ``es5`` build) and mermaid 11 from ``mermaidx`` (its browser
bundle). ``_config.yml`` points Sphinx at ``_static/mathjax/tex-chtml.js`` and
sphinxcontrib-mermaid at ``_static/mermaid/mermaid.mjs``; this extension copies the files there
when the HTML is written. Nothing is fetched from a CDN, at build time or when a page is read.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

# What tex-chtml.js loads: itself, its fonts, TeX extensions on demand, the menu and the
# accessibility tools (with the speech rule engine's maps).
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml", "input/tex/extensions", "a11y", "sre", "ui",
                 "adaptors"]

# mermaid's browser bundle ends by setting globalThis.mermaid; sphinxcontrib-mermaid imports an
# ES module with a default export. The module is the bundle with that last statement exported.
BUNDLE_END = 'globalThis["mermaid"] = globalThis.__esbuild_esm_mermaid_nm["mermaid"].default;'
MODULE_END = 'export default __esbuild_esm_mermaid_nm["mermaid"].default;'


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the book needs the package {name!r}: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def mathjax_dir() -> Path:
    return _package_dir("mathjax") / "static" / "mathjax" / "es5"


def mermaid_js() -> Path:
    return _package_dir("mermaidx") / "assets" / "mermaid.js"


def copy_assets(static: Path) -> None:
    """Copy MathJax and mermaid into a site's ``_static`` folder."""
    source = mathjax_dir()
    for part in MATHJAX_PARTS:
        src, dst = source / part, static / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    bundle = mermaid_js().read_text(encoding="utf-8").rstrip()
    if not bundle.endswith(BUNDLE_END):
        raise RuntimeError(f"{mermaid_js()} does not end as expected: cannot make an ES module")
    (static / "mermaid").mkdir(parents=True, exist_ok=True)
    (static / "mermaid" / "mermaid.mjs").write_text(
        bundle[: -len(BUNDLE_END)] + MODULE_END + "\n", encoding="utf-8")


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                    doctree: Any) -> None:
    """Drop repeated inline scripts: sphinx-thebe's configuration is added twice under
    Jupyter Book 1, and a second ``const THEBE_JS_URL`` is a script error in the browser."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", str(script)) or "",  # None and "" alike
               repr(sorted(getattr(script, "attributes", {}).items())))  # not the priority
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: the template may hold this list


def myst_markdown(nb: dict[str, Any]) -> str:
    """A notebook as a MyST Markdown notebook (text only: the cells, without outputs)."""
    kernel = nb.get("metadata", {}).get("kernelspec", {})
    lines = ["---", "jupytext:", "  text_representation:", "    extension: .md",
             "    format_name: myst", "kernelspec:",
             f"  display_name: {kernel.get('display_name', 'Python 3 (ipykernel)')}",
             f"  language: {kernel.get('language', 'python')}",
             f"  name: {kernel.get('name', 'python3')}", "---", ""]
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            lines.append("```{code-cell} ipython3")
            if tags:
                lines.append(f":tags: [{', '.join(tags)}]")
                lines.append("")
            lines += [source, "```", ""]
        else:
            lines += [source, ""]
    return "\n".join(lines)


def write_markdown_copies(app: Any) -> None:
    """Put a MyST Markdown copy of every chapter beside its .ipynb in ``_sources/``."""
    for docname in sorted(app.env.found_docs):
        source = Path(app.env.doc2path(docname))
        if not docname.startswith("chapters/") or source.suffix != ".ipynb":
            continue
        target = Path(app.outdir) / "_sources" / f"{docname}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(myst_markdown(json.loads(source.read_text(encoding="utf-8"))),
                          encoding="utf-8")


def _on_build_finished(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_assets(Path(app.outdir) / "_static")
        write_markdown_copies(app)


def _run_it_locally(app: Any, doctree: Any, docname: str) -> None:
    """Every chapter page says how to run it on your own machine, under its title."""
    if not docname.startswith("chapters/"):
        return
    from docutils import nodes

    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    para = nodes.paragraph()
    para += nodes.strong(text="Run it locally: ")
    para += nodes.Text("clone the repository, run ")
    para += nodes.literal(text="make lab")
    para += nodes.Text(" and open ")
    para += nodes.literal(text=f"{docname}.ipynb")
    para += nodes.Text(" (a laptop CPU is enough; a GPU is used when there is one). "
                       "Or use the launch button above for Binder, Colab or your JupyterHub. "
                       "Download it as ")
    name = docname.split("/")[-1]
    for suffix, sep in ((".ipynb", " or "), (".md", " (MyST Markdown).")):
        para += nodes.reference("", suffix, refuri=f"../_sources/{docname}{suffix}",
                                classes=["download-" + suffix[1:]], name=f"{name}{suffix}")
        para += nodes.Text(sep)
    note = nodes.note("", para, classes=["run-it-locally"])
    title = next(iter(section.findall(nodes.title)), None)
    section.insert(section.index(title) + 1 if title is not None else 0, note)


def setup(app: Any) -> dict[str, Any]:
    mathjax_dir(), mermaid_js()  # fail early, with the reason, when a package is missing
    app.connect("build-finished", _on_build_finished)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("doctree-resolved", _run_it_locally)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
