"""`orchard config` against the real hydra-core: the same conf/ directories and overrides must compose to the
same tree (same keys, same order, same values and types), print the same YAML, and fail where Hydra fails."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import BIN

CORPUS = pathlib.Path(__file__).parent / "hydra_corpus"

CASES = [
    ("app", []),
    ("app", ["db=postgresql"]),
    ("app", ["db=postgresql", "model=linear", "server=nginx"]),
    ("app", ["server/db=other"]),
    ("app", ["params.learning_rate=0.02", "params.epochs=20"]),
    ("app", ["+params.new_key=1", "~params.drop", "++params.learning_rate=5"]),
    ("app", ["++extra.deep.key=[1, 2, {a: b}]"]),
    ("app", ["params.tags=[x,y]", "data.split.train=0.7"]),
    ("app", ["params.run_name='quoted, with comma'", "params.epochs=1e-3"]),
    ("app", ["params.learning_rate=TRUE", "params.epochs=null", "params.drop=inf"]),
    ("app", ["params.drop=${data.path}", "data.path=/abs/path/file.csv"]),
    ("app", ["+db@backup=mysql"]),
    ("app", ["~model"]),
    ("app", ["~server=apache"]),
    ("app", ["params.drop= spaced value  "]),
    ("app", ["params.drop=esc\\,aped"]),
    ("pkg", []),
    ("pkg", ["db=mysql"]),
    ("pkg", ["db@backup=mysql", "env=dev"]),
    ("pkg", ["extras=[b]"]),
    ("interp", []),
    ("interp", ["train.lr=0.5", "paths.root=/data", "train.which=seed"]),
    ("types", []),
    ("types", ["must_set=given", "strings.empty=x"]),
]

ERROR_CASES = [
    ("app", ["db=oracle"], "Could not find 'db/oracle'"),
    ("app", ["params.nope=1"], "Could not override 'params.nope'"),
    ("app", ["+params.epochs=1"], "Could not append to config. An item is already at 'params.epochs'"),
    ("app", ["params.learning_rate=0.1,0.2"], "Ambiguous value for argument"),
    ("app", ["params.x=[1,2"], None),
    ("app", ["~params.nope"], "Could not delete from config"),
    ("app", ["~server=nginx"], "Could not delete 'server=nginx'. No match in the defaults list"),
    ("pkg", ["+env=dev"], "Multiple values for env"),
]


def hydra_compose(case: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CORPUS / case), version_base=None):
        return compose(config_name="config", overrides=overrides)


def orchard(case: str, overrides: list[str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN, "config", "show", "-c", str(CORPUS / case), "-n", "config", *flags, *overrides],
        capture_output=True,
        text=True,
        env={**os.environ, "USER": "tester", "ORCHARD_CFG_TEST_HOME": "/home/tester"},
    )


def normalize(x):
    """JSON-comparable with key order kept: dicts as lists of pairs; nan/inf as Orchard writes them."""
    if isinstance(x, dict):
        return [(k, normalize(v)) for k, v in x.items()]
    if isinstance(x, list):
        return [normalize(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, int):
        return ("int", x)
    if isinstance(x, float):
        return ("float", x)
    return x


@pytest.fixture(autouse=True)
def user_env(monkeypatch):
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("ORCHARD_CFG_TEST_HOME", "/home/tester")


@pytest.mark.parametrize("case,overrides", CASES, ids=[f"{c}:{' '.join(o) or '-'}" for c, o in CASES])
def test_composes_like_hydra(case, overrides):
    cfg = hydra_compose(case, overrides)
    expected = OmegaConf.to_container(cfg, resolve=False)
    out = orchard(case, overrides, "--json")
    assert out.returncode == 0, out.stderr
    assert normalize(json.loads(out.stdout)) == normalize(expected)
    # The printed YAML is the same text `--cfg job` prints.
    yaml_out = orchard(case, overrides)
    assert yaml_out.stdout == OmegaConf.to_yaml(cfg)
    if case != "types":  # `types` leaves a ??? on purpose
        resolved = orchard(case, overrides, "--json", "--resolve")
        assert resolved.returncode == 0, resolved.stderr
        assert normalize(json.loads(resolved.stdout)) == normalize(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("case,overrides,message", ERROR_CASES, ids=[" ".join(o) for _, o, _ in ERROR_CASES])
def test_fails_where_hydra_fails(case, overrides, message):
    with pytest.raises(Exception) as hydra_error:
        cfg = hydra_compose(case, overrides)
        OmegaConf.to_container(cfg, resolve=True)
    out = orchard(case, overrides, "--json", "--resolve")
    assert out.returncode != 0
    if message:
        assert message in str(hydra_error.value) or message in repr(hydra_error.value.__cause__)
        assert message in out.stderr, out.stderr


def test_multirun_order_matches_the_basic_sweeper(tmp_path):
    """A real @hydra.main app run with --multirun prints its jobs' overrides; `orchard config sweep` must list
    the same jobs in the same order."""
    app = tmp_path / "app.py"
    app.write_text(
        "import hydra\n"
        "from hydra.core.hydra_config import HydraConfig\n"
        f"@hydra.main(version_base=None, config_path={str(CORPUS / 'app')!r}, config_name='config')\n"
        "def main(cfg):\n"
        "    print('JOB', ' '.join(HydraConfig.get().overrides.task), flush=True)\n"
        "main()\n"
    )
    sweep = ["db=glob(*)", "params.learning_rate=choice(0.1,0.01)", "params.epochs=range(1,3)", "model=linear"]
    run = subprocess.run(
        [sys.executable, str(app), "--multirun", f"hydra.sweep.dir={tmp_path}/multirun", *sweep],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    hydra_jobs = [line[4:] for line in run.stdout.splitlines() if line.startswith("JOB ")]
    out = subprocess.run([BIN, "config", "sweep", "-c", str(CORPUS / "app"), "--json", *sweep], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    orchard_jobs = [" ".join(j["overrides"]) for j in json.loads(out.stdout)]
    assert orchard_jobs == hydra_jobs
    assert len(orchard_jobs) == 8
