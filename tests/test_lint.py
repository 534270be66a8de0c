"""Lint: ruff over the package, the tests and the notebooks, and actionlint over the GitHub
workflows, run through the same pre-commit hooks a contributor installs."""

import os

import yaml

from conftest import BIN, ROOT, run, tool


def test_ruff_is_clean():
    proc = run([tool("ruff"), "check", "--no-cache", str(ROOT)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_pass_actionlint():
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 2, "the test workflow and the Pages workflow"
    proc = run([tool("actionlint"), *workflows])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_pre_commit_hooks_are_the_lint_of_the_test_command(tmp_path):
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {h["id"]: h["entry"] for repo in config["repos"] for h in repo["hooks"]}
    assert entries == {"ruff": "ruff check --force-exclude", "actionlint": "actionlint"}
    proc = run([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if (ROOT / ".git").exists():  # a clone: run the hooks as a commit would, over every file
        env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")}
        proc = run([tool("pre-commit"), "run", "--all-files"], env=env)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
