"""`orchard repro` against the real `dvc` 3.67.1 on the same pipelines: the same dvc.lock byte for byte, `dvc
status` / `dvc repro --dry` agreeing that what Orchard reproduced is up to date, one run cache read by both,
params composed from a Hydra `conf/` with overrides, and Orchard's retries, timeouts, failure handling and
parallel stages (declared under `meta.orchard`, which `dvc` accepts)."""

from __future__ import annotations

import json
import shutil

from pipelines import assert_up_to_date, make_repo, one_stage, run_orchard, tools, tracked_train_stage

PIPELINE = """\
stages:
  prep:
    cmd: cp data/in.txt prep.txt
    deps: [data/in.txt]
    outs: [prep.txt]
  train:
    cmd:
    - mkdir -p out/dir
    - cp prep.txt out/model.txt
    - cp -r data/dir/. out/dir/
    - "echo '{\\"acc\\": 0.5}' > metrics.json"
    deps: [prep.txt, data/dir]
    params: [lr, train.depth, {custom.yaml: [opt]}]
    outs: [out/model.txt, out/dir]
    metrics:
    - metrics.json:
        cache: false
    meta:
      owner: someone
      orchard: {retries: 1, retry_delay: 0}
  fe:
    foreach: [x, y]
    do:
      cmd: echo ${item} > fe-${item}.txt
      deps: [data/in.txt]
      outs:
      - fe-${item}.txt
  mx:
    matrix:
      m: [p, q]
      n: [1, 2]
    cmd: echo ${item.m}${item.n} > mx-${key}.txt
    deps: [data/in.txt]
    outs:
    - mx-${key}.txt
"""


def test_same_lock_file_as_dvc_and_dvc_agrees_it_is_up_to_date(tools, tmp_path):
    ours = make_repo(tools, tmp_path / "orchard", PIPELINE)
    theirs = make_repo(tools, tmp_path / "dvc", PIPELINE)
    out = run_orchard(tools, ours, "repro").stdout
    assert "Running stage 'prep':\n> cp data/in.txt prep.txt" in out
    tools.dvc(theirs, "repro")
    assert (ours / "dvc.lock").read_text() == (theirs / "dvc.lock").read_text()
    assert (ours / "out/model.txt").read_text() == "a\nb\n"
    assert "/prep.txt" in (ours / ".gitignore").read_text()
    assert_up_to_date(tools, ours)

    # And the other way round: Orchard finds nothing to do in the repository dvc reproduced.
    out = run_orchard(tools, theirs, "repro").stdout
    assert "Running stage" not in out and "Data and pipelines are up to date." in out

    # Both see the same change the same way.
    (ours / "params.yaml").write_text("lr: 0.02\ntrain:\n  depth: 5\n")
    ours_status = json.loads(run_orchard(tools, ours, "pipeline", "status", "--json").stdout)
    dvc_status = json.loads(tools.dvc(ours, "status", "--json").stdout)
    assert ours_status == dvc_status == {"train": [{"changed deps": {"params.yaml": {"lr": "modified"}}}]}


def test_run_cache_is_shared_with_dvc(tools, tmp_path):
    root = make_repo(tools, tmp_path / "r", PIPELINE)
    run_orchard(tools, root, "repro")
    (root / "params.yaml").write_text("lr: 0.02\ntrain:\n  depth: 5\n")
    tools.dvc(root, "repro")  # a second run, recorded by dvc
    (root / "params.yaml").write_text("lr: 0.01\ntrain:\n  depth: 5\n")
    out = run_orchard(tools, root, "repro").stdout
    assert "Stage 'train' is cached - skipping run, checking out outputs" in out, out
    (root / "params.yaml").write_text("lr: 0.02\ntrain:\n  depth: 5\n")
    (root / "metrics.json").unlink()
    out = run_orchard(tools, root, "repro").stdout  # dvc's run, restored by Orchard
    assert "Stage 'train' is cached" in out, out
    assert json.loads((root / "metrics.json").read_text()) == {"acc": 0.5}
    assert_up_to_date(tools, root)
    (root / "params.yaml").write_text("lr: 0.01\ntrain:\n  depth: 5\n")
    assert "Stage 'train' is cached" in tools.dvc(root, "repro").stdout  # Orchard's run, restored by dvc


def test_params_from_composed_config_rerun_only_what_tracks_them(tools, tmp_path):
    pipeline = """\
stages:
  features:
    cmd: echo "${features.scale}" > features.txt
    params: [features.scale]
    deps: [data/in.txt]
    outs: [features.txt]
  train:
    cmd: echo "${train.lr}" > model.txt
    deps: [features.txt]
    params: [train.lr]
    outs: [model.txt]
"""
    root = make_repo(tools, tmp_path / "r", pipeline)
    (root / "params.yaml").unlink()
    (root / "conf").mkdir()
    (root / "conf/config.yaml").write_text("features:\n  scale: 2\ntrain:\n  lr: 0.1\n")
    out = run_orchard(tools, root, "repro").stdout
    assert out.count("Running stage") == 2
    assert "lr: 0.1" in (root / "params.yaml").read_text()
    out = run_orchard(tools, root, "repro", "train.lr=0.02").stdout
    assert "Stage 'features' didn't change, skipping" in out and "Running stage 'train'" in out, out
    assert (root / "model.txt").read_text().strip() == "0.02"
    assert_up_to_date(tools, root)
    out = run_orchard(tools, root, "repro", "train.lr=0.02").stdout
    assert "Running stage" not in out
    # --dry shows what an override would rerun and changes nothing, params.yaml included.
    before = (root / "params.yaml").read_text()
    out = run_orchard(tools, root, "repro", "--dry", "train.lr=0.5").stdout
    assert "Stage 'features' didn't change, skipping" in out and "Running stage 'train'" in out, out
    assert (root / "params.yaml").read_text() == before
    assert_up_to_date(tools, root)
    bad = run_orchard(tools, root, "repro", "train.nope=1", check=False)
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_failures_stop_dependants_keep_the_rest_and_resume(tools, tmp_path):
    pipeline = """\
stages:
  flaky:
    cmd: test -f fixed
    deps: [data/in.txt]
    outs: [never.txt]
  after:
    cmd: cp never.txt after.txt
    deps: [never.txt]
    outs: [after.txt]
  other:
    cmd: cp data/in.txt other.txt
    deps: [data/in.txt]
    outs: [other.txt]
  retried:
    cmd: sh -c 'if [ -f tried ]; then cp data/in.txt retried.txt; else touch tried; exit 3; fi'
    deps: [data/in.txt]
    outs: [retried.txt]
    meta:
      orchard: {retries: 2, retry_delay: 0}
  slow:
    cmd: sleep 30
    deps: [data/in.txt]
    outs: [slow.txt]
    meta:
      orchard: {timeout: 0.5}
"""
    root = make_repo(tools, tmp_path / "r", pipeline)
    tools.dvc(root, "status")  # dvc accepts the meta.orchard settings
    r = run_orchard(tools, root, "repro", "--json", check=False)
    assert r.returncode != 0 and "run `orchard repro` again to resume" in r.stderr
    states = {s["stage"]: s for s in json.loads(r.stdout)}
    assert states["flaky"]["state"] == "failed" and "exited with 1" in states["flaky"]["detail"]
    assert states["after"]["state"] == "blocked" and "flaky" in states["after"]["detail"]
    assert states["other"]["state"] == "ran"
    assert states["retried"] == {**states["retried"], "state": "ran", "detail": {"attempts": 2}}
    assert states["slow"]["state"] == "failed" and "timed out" in states["slow"]["detail"]
    assert states["slow"]["seconds"] < 20
    lock = (root / "dvc.lock").read_text()
    assert "other:" in lock and "flaky:" not in lock

    (root / "fixed").write_text("")
    (root / "never.txt").write_text("made\n")
    pipeline = pipeline.replace("cmd: test -f fixed", "cmd: cp fixed never.txt").replace("sleep 30", "touch slow.txt")
    (root / "dvc.yaml").write_text(pipeline)
    r = run_orchard(tools, root, "repro", "--json")
    states = {s["stage"]: s["state"] for s in json.loads(r.stdout)}
    assert states == {"flaky": "ran", "after": "ran", "other": "unchanged", "retried": "unchanged", "slow": "ran"}
    assert_up_to_date(tools, root)


def test_independent_stages_run_side_by_side(tools, tmp_path):
    # Each stage waits (bounded by its timeout) for the other to have started: only a parallel run passes.
    pipeline = """\
stages:
  a:
    cmd: sh -c 'touch a.started; while [ ! -f b.started ]; do sleep 0.01; done; echo a > a.txt'
    deps: [data/in.txt]
    outs: [a.txt]
    meta: {orchard: {timeout: 20}}
  b:
    cmd: sh -c 'touch b.started; while [ ! -f a.started ]; do sleep 0.01; done; echo b > b.txt'
    deps: [data/in.txt]
    outs: [b.txt]
    meta: {orchard: {timeout: 20}}
"""
    root = make_repo(tools, tmp_path / "r", pipeline)
    r = run_orchard(tools, root, "repro", "-j", "2", "--json")
    assert {s["state"] for s in json.loads(r.stdout)} == {"ran"}
    assert_up_to_date(tools, root)
    dag = run_orchard(tools, root, "pipeline", "dag").stdout.split()
    assert sorted(dag) == ["a", "b"]


def test_invalid_pipelines_are_refused_like_dvc(tools, tmp_path):
    root = make_repo(tools, tmp_path / "r", "stages:\n  a:\n    cmd: echo hi\n    outz: [x]\n")
    r = run_orchard(tools, root, "repro", check=False)
    assert r.returncode != 0 and "extra keys not allowed, in stages -> a -> outz" in r.stderr
    d = tools.dvc(root, "status", check=False)
    assert d.returncode != 0 and "extra keys not allowed" in d.stderr


def test_stages_log_into_child_runs_of_the_pipeline_run(tools, tmp_path, orchard):
    """With a tracking server, each stage that runs gets a child run of the pipeline's run, whose id the
    stage's command receives — `mlflow` code in it logs there unchanged — and its metrics file is logged."""
    from mlflow import MlflowClient

    script = tmp_path / "stage.py"
    script.write_text(
        "import json, mlflow\n"
        "mlflow.log_param('from_code', 'yes')\n"
        "mlflow.log_metric('loss', 0.25)\n"
        "json.dump({'eval': {'acc': 0.75}}, open('metrics.json', 'w'))\n"
    )
    pipeline = "stages:\n" + tracked_train_stage(script) + one_stage("broken", "exit 4", "nothing.txt")
    root = make_repo(tools, tmp_path / "r", pipeline)
    r = run_orchard(tools, root, "repro", "--tracking-uri", orchard.url, "--experiment", "iris-pipeline", check=False)
    assert r.returncode != 0, r.stdout
    client = MlflowClient(orchard.url)
    exp = client.get_experiment_by_name("iris-pipeline")
    runs = {run.info.run_name: run for run in client.search_runs([exp.experiment_id])}
    parent = runs[f"repro r"]
    assert parent.info.status == "FAILED"
    train, broken = runs["train"], runs["broken"]
    assert train.data.tags["mlflow.parentRunId"] == broken.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert train.data.params == {"from_code": "yes"}
    assert train.data.metrics == {"loss": 0.25, "eval.acc": 0.75}
    assert train.info.status == "FINISHED" and train.data.tags["orchard.stage.attempts"] == "1"
    assert broken.info.status == "FAILED" and "exited with 4" in broken.data.tags["orchard.stage.error"]
    # Orchard's own record of the pipeline run links the same tracking runs.
    [record] = json.loads(run_orchard(tools, root, "pipeline", "runs", "--json").stdout)
    assert record["tracking_run_id"] == parent.info.run_id
    links = {st["stage"]: st["tracking_run_id"] for st in record["stages"]}
    assert links == {"train": train.info.run_id, "broken": broken.info.run_id}


def test_a_key_removed_from_a_whole_params_file_is_a_change(tools, tmp_path):
    pipeline = "stages:\n  a:\n    cmd: cp data/in.txt a.txt\n    deps: [data/in.txt]\n    params:\n    - custom.yaml:\n    outs: [a.txt]\n"
    root = make_repo(tools, tmp_path / "r", pipeline)
    (root / "custom.yaml").write_text("opt: 1\nold: 2\n")
    run_orchard(tools, root, "repro")
    (root / "custom.yaml").write_text("opt: 1\n")
    ours = json.loads(run_orchard(tools, root, "pipeline", "status", "--json").stdout)
    theirs = json.loads(tools.dvc(root, "status", "--json").stdout)
    assert ours == theirs == {"a": [{"changed deps": {"custom.yaml": {"old": "deleted"}}}]}


def test_one_job_runs_one_command_at_a_time(tools, tmp_path):
    # While a finished stage's outputs are recorded the next command may start, but with -j 1 (the default)
    # no two commands ever run side by side: each one's start and end lines come in pairs.
    stage = """\
  {n}:
    cmd: sh -c 'echo start >> order.log; sleep 0.05; echo end >> order.log; echo {n} > {n}.txt'
    deps: [data/in.txt]
    outs: [{n}.txt]
"""
    root = make_repo(tools, tmp_path / "r", "stages:\n" + "".join(stage.format(n=f"s{i}") for i in range(8)))
    run_orchard(tools, root, "repro")
    assert (root / "order.log").read_text() == "start\nend\n" * 8
    assert_up_to_date(tools, root)
