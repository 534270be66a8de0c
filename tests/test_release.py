"""attnlab as users install it: one version everywhere, a wheel that grades on its own far from
the repository, a course's own tests bundle, the citation file, the licences, Binder."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

import attnlab
from conftest import ROOT, run, tool

VERSION = attnlab.__version__


# --------------------------------------------------------------------------- one version


def test_the_version_is_defined_once_and_shown_everywhere():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()
    proc = run([tool("attnlab"), "--version"])
    assert proc.stdout.strip() == f"attnlab {VERSION}"
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == VERSION
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.M)
    assert released and released[0] == VERSION, "the newest CHANGELOG entry is this version"
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert f"Attention Lab {VERSION}" in footer


# --------------------------------------------------------------------------- citation, licences


def citation_errors(data: dict) -> list[str]:
    schema = json.loads((ROOT / "tests" / "data" / "citation-file-format-1.2.0.schema.json")
                        .read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    return [e.message for e in validator.iter_errors(data)]


def test_citation_cff_is_valid_against_its_schema():
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation_errors(data) == []
    broken = {k: v for k, v in data.items() if k != "authors"}
    assert any("authors" in e for e in citation_errors(broken)), "the check can fail"
    assert citation_errors({**data, "license": "not-a-licence"}), "licences are SPDX ids"


def test_both_licences_are_there_and_stated():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    content = (ROOT / "LICENSE-CONTENT").read_text()
    assert "Attribution-ShareAlike 4.0 International Public License" in content
    assert "Section 8 – Interpretation." in content, "the whole legal code"
    readme = (ROOT / "README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "MIT" in readme
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "CC BY-SA 4.0" in footer and "MIT" in footer


# --------------------------------------------------------------------------- binder, hub


def test_binder_installs_the_pinned_requirements_then_attnlab():
    req = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in req, "Binder runs what the book was executed with"
    assert any("download.pytorch.org/whl/cpu" in line for line in req), "the CPU torch"
    post = ROOT / "binder" / "postBuild"
    assert post.stat().st_mode & stat.S_IXUSR, "postBuild must be executable"
    assert "pip install --no-deps -e ." in post.read_text()
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    major, minor = map(int, runtime.removeprefix("python-").split("."))
    assert (major, minor) >= (3, 10)


def test_the_jupyterhub_button_is_configured_for_nbgitpuller():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["jupyterhub_url"].startswith("https://")
    assert "nbgitpuller" in (ROOT / "README.md").read_text(), "documented for a course's hub"


# --------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with the setuptools of this environment, offline
    proc = run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                "--outdir", str(out), str(ROOT)], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_the_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"], files
    proc = run([tool("twine"), "check", "--strict", *map(str, files)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_wheel_ships_every_tests_bundle_and_nothing_of_the_book(dist):
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    sets = sorted(p.name for p in (ROOT / "attnlab" / "grading" / "bundles").iterdir()
                  if (p / "set.json").exists())
    for s in sets:
        for f in ("set.json", "tests.py"):
            assert f"attnlab/grading/bundles/{s}/{f}" in names, f"{s}/{f} is not in the wheel"
    assert not [n for n in names if n.startswith(("chapters/", "tests/", "solutions/"))]
    meta = zipfile.ZipFile(wheel).read(f"attnlab-{VERSION}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    requires = re.findall(r"^Requires-Dist: (.*)$", meta, flags=re.M)
    assert "torch>=2.4" in requires, requires
    assert not [r for r in requires if "==" in r.split(";")[0]], "ranges, not pins"


def declared_closure(wheel: Path) -> set[str]:
    """The distributions the wheel declares (base dependencies, no extras), with theirs."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    meta = zipfile.ZipFile(wheel).read(f"attnlab-{VERSION}.dist-info/METADATA").decode()
    todo = [Requirement(r) for r in re.findall(r"^Requires-Dist: (.*)$", meta, flags=re.M)]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.distribution(name).requires or []]
    return seen


def reuse_only(names: set[str], into: Path) -> None:
    """Link the files of the installed distributions ``names`` (and nothing else) into ``into``."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in names:
            continue
        site = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = Path(f).parts[0]
            source = site / top
            if top in ("..", "bin") or not source.exists() or (into / top).exists():
                continue
            (into / top).symlink_to(source)


def test_an_instructor_grades_with_the_installed_wheel_far_from_the_repository(dist):
    """As an instructor installs it: a new virtual environment in a `mktemp -d` folder (mode 700)
    with torch and only what the wheel declares, taken from this environment (pip installs the
    wheel from no index at all, so it can neither download nor replace torch); the grader runs
    as root, and its sandbox must still read that environment."""
    (wheel,) = dist.glob("*.whl")
    base = Path(tempfile.mkdtemp(prefix="attnlab-wheel-"))
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    try:
        venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        # the venv's own (older) setuptools would hide the one torch needs
        subprocess.run([str(py), "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"],
                       capture_output=True, check=False)
        site = Path(subprocess.run([str(py), "-c", "import sysconfig; "
                                    "print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        deps = base / "deps"  # what the wheel declares, from this environment; nothing else
        deps.mkdir()
        declared = declared_closure(wheel)
        assert {"torch", "numpy", "ipython"} <= declared, declared
        assert "attnlab" not in declared and "jupyterlab" not in declared
        reuse_only(declared, deps)
        (site / "reused-packages.pth").write_text(f"{deps}\n")
        proc = run([str(py), "-m", "pip", "install", "--no-index", str(wheel)], timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert re.search(rf"Successfully installed attnlab-{re.escape(VERSION)}\s*$",
                         proc.stdout.strip()), "only attnlab is installed: " + proc.stdout

        work = base / "course"
        work.mkdir()
        shutil.copy(ROOT / "solutions" / "01_softmax.ipynb", work / "alice.ipynb")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        where = subprocess.run([str(py), "-c", "import attnlab; print(attnlab.__file__)"],
                               cwd=work, env=env, capture_output=True, text=True, check=True)
        assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
        missing = subprocess.run([str(py), "-c", "import jupyterlab"], cwd=work, env=env,
                                 capture_output=True, text=True)
        assert missing.returncode != 0, "the environment reuses more than the wheel declares"
        proc = subprocess.run([str(venv / "bin" / "attnlab"), "grade", "alice.ipynb",
                               "--json", "scores.json"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (row,) = json.loads((work / "scores.json").read_text())
        assert row["error"] is None and row["score"] == row["max_score"] > 0, row
    finally:
        shutil.rmtree(base, ignore_errors=True)


def torch_site() -> str:
    import torch

    return str(Path(torch.__file__).resolve().parents[1])


# --------------------------------------------------------------------------- a course's tests

CHEAT = '''
import torch
def stable_softmax(x, dim=-1):
    # right on every input the shipped tests use, wrong on rows of 8 or more
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    w = e / e.sum(dim=dim, keepdim=True)
    return w if x.shape[dim] < 8 else torch.full_like(w, 1.0 / x.shape[dim])
'''


def test_a_course_grades_with_its_own_hidden_tests(tmp_path):
    """What a public package ships, a student can read: a course edits its copy of a set's
    source, builds its own bundle with the same command, and grades with --tests."""
    from attnlab.grading.spec import load_set

    shipped = load_set(ROOT / "attnlab" / "grading" / "bundles" / "01_softmax")
    assert all(c.args[0].shape[c.kwargs.get("dim", -1)] < 8
               for c, _ in shipped.question("q1").cases), "the cheat passes the shipped tests"
    source = json.loads((ROOT / "exercises" / "source" / "01_softmax.ipynb").read_text())
    edits = 0
    for cell in source["cells"]:
        text = "".join(cell["source"])
        if text.startswith("# TESTS") and '"stable_softmax"' in text:
            text = text.replace("    hidden=[\n", "    hidden=[\n        case(torch.randn(3, 12, "
                                "generator=g), note=\"a course's own hidden test\"),\n", 1)
            cell["source"] = text
            edits += 1
    assert edits == 1
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "source" / "01_softmax.ipynb").write_text(json.dumps(source))
    proc = run([tool("attnlab"), "exercises", "build", str(course / "source" / "01_softmax.ipynb"),
                "--exercises", str(course / "exercises"), "--solutions",
                str(course / "solutions"), "--bundles", str(course / "bundles")])
    assert proc.returncode == 0, proc.stdout + proc.stderr

    nb = json.loads((ROOT / "solutions" / "01_softmax.ipynb").read_text())
    for cell in nb["cells"]:
        if "def stable_softmax" in "".join(cell["source"]):
            cell["source"] = CHEAT
    (tmp_path / "bob.ipynb").write_text(json.dumps(nb))

    def q1(tests: list[str]) -> dict:
        out = tmp_path / "scores.json"
        proc = run([tool("attnlab"), "grade", str(tmp_path / "bob.ipynb"), "--json", str(out),
                    *tests])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (row,) = json.loads(out.read_text())
        return next(q for q in row["questions"] if q["name"] == "q1")

    shipped_q1, course_q1 = q1([]), q1(["--tests", str(course / "bundles")])
    assert shipped_q1["score"] == shipped_q1["max_score"]
    assert course_q1["score"] < course_q1["max_score"]
    assert "a course's own hidden test" in course_q1["feedback"]
