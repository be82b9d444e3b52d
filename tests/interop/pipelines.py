"""Shared by the pipeline suites (test_pipeline_dvc.py, test_pipeline_runs.py): the `tools` fixture, a git + dvc
repository holding a pipeline, `orchard` run in it, the check that dvc and Orchard both find it up to date, and
the dvc.yaml stages that both suites write. The test modules import the fixture by name, which is how pytest
finds it there."""

from __future__ import annotations

import pathlib
import sys

import pytest

from conftest import BIN
from test_data_dvc import Tools


@pytest.fixture
def tools(tmp_path):
    return Tools(tmp_path)


def run_orchard(tools, cwd, *args, check=True):
    return tools.run([BIN, *args], cwd, check)


def make_repo(tools, root: pathlib.Path, pipeline: str):
    root.mkdir(parents=True)
    tools.git(root, "init", "-q", ".")
    tools.dvc(root, "init", "-q")
    (root / "data/dir").mkdir(parents=True)
    (root / "data/in.txt").write_text("a\nb\n")
    (root / "data/dir/1").write_text("x\n")
    (root / "data/dir/2").write_text("y\n")
    (root / "params.yaml").write_text("lr: 0.01\ntrain:\n  depth: 5\n")
    (root / "custom.yaml").write_text("opt:\n  name: adam\n  beta: 0.9\n")
    (root / "dvc.yaml").write_text(pipeline)
    return root


def assert_up_to_date(tools, root):
    assert tools.dvc(root, "status", "--json").stdout.strip() == "{}"
    dry = tools.dvc(root, "repro", "--dry").stdout
    assert "Running stage" not in dry, dry
    assert run_orchard(tools, root, "pipeline", "status", "--json").stdout.strip() == "{}"


def one_stage(name: str, cmd: str, out: str) -> str:
    """A stage of dvc.yaml, to follow `stages:`, that runs `cmd` on the repository's data file and writes `out`:
    the shape most of the test pipelines are made of."""
    return f"  {name}:\n    cmd: {cmd}\n    deps: [data/in.txt]\n    outs: [{out}]\n"


def tracked_train_stage(script: pathlib.Path) -> str:
    """The `train` stage of the tracking tests, to follow `stages:`: `script` run by this Python (its `mlflow`
    calls log into the stage's run), and the metrics file it writes, kept out of the cache."""
    return (f"  train:\n    cmd: {sys.executable} {script}\n    deps: [data/in.txt]\n"
            "    metrics:\n    - metrics.json:\n        cache: false\n")
