"""ruff, over the package, the tests and the notebooks (configured in pyproject.toml)."""

from conftest import ROOT, run, tool


def test_ruff_is_clean():
    proc = run([tool("ruff"), "check", "--no-cache", str(ROOT)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
