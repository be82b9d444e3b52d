"""Pipeline runs in the metadata store, on SQLite and PostgreSQL: every `orchard repro` recorded with its stage
runs (status, exit code, captured output) and shown by `orchard pipeline runs` / `logs`; `--multirun` sweeps;
queued runs leased by two `orchard worker`s, one of them killed with SIGKILL mid-stage; cron schedules that
`orchard server` turns into queued runs. `dvc status` checks that what the workers reproduced is up to date."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import BIN, OrchardServer
from pipelines import assert_up_to_date, make_repo, one_stage, run_orchard, tools, tracked_train_stage


def wait_for(what, predicate, timeout=60.0):
    """Polls a condition the test observes from outside (a file, a row); fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gone(pid):
    """The process has exited (or is a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def finished_run(tools, root, uri):
    """The one pipeline run in the store, once it has finished."""
    [run] = wait_for("the run to finish", lambda: [r for r in runs(tools, root, uri) if r["status"] in ("SUCCEEDED", "FAILED")])
    return run


def runs(tools, root, uri):
    return json.loads(run_orchard(tools, root, "pipeline", "runs", "--json", "--backend-store-uri", uri).stdout)


def logs(tools, root, uri, run_id, *extra):
    out = run_orchard(tools, root, "pipeline", "logs", run_id, "--json", "--backend-store-uri", uri, *extra).stdout
    return json.loads(out)


PIPELINE = "stages:\n" + one_stage("talk", "sh -c 'echo to-out; echo to-err >&2; cp data/in.txt talk.txt'", "talk.txt") + """\
  fail:
    cmd: sh -c 'echo about to fail; exit 7'
    deps: [talk.txt]
    outs: [never.txt]
  after:
    cmd: cp never.txt after.txt
    deps: [never.txt]
    outs: [after.txt]
"""


def test_every_repro_is_recorded_with_its_stage_runs_and_output(tools, tmp_path, backend_uri):
    root = make_repo(tools, tmp_path / "r", PIPELINE)
    r = run_orchard(tools, root, "repro", "--backend-store-uri", backend_uri, check=False)
    assert r.returncode != 0
    # The output still reaches the terminal while it is recorded.
    assert "to-out" in r.stdout and "to-err" in r.stderr and "orchard pipeline logs" in r.stderr
    [run] = runs(tools, root, backend_uri)
    assert run["status"] == "FAILED" and run["project"] == str(root)
    stages = {s["stage"]: s for s in run["stages"]}
    assert stages["talk"]["status"] == "SUCCEEDED" and stages["talk"]["exit_code"] == 0
    assert stages["fail"]["status"] == "FAILED" and stages["fail"]["exit_code"] == 7
    assert stages["after"]["status"] == "BLOCKED"
    assert all(s["end_ms"] >= s["start_ms"] for s in run["stages"])

    detail = logs(tools, root, backend_uri, run["run_id"][:8])
    by = {s["stage"]: s for s in detail["stages"]}
    assert by["talk"]["stdout"].strip() == "to-out" and by["talk"]["stderr"].strip() == "to-err"
    assert "about to fail" in by["fail"]["stdout"] and "exited with 7" in by["fail"]["error"]
    text = run_orchard(tools, root, "pipeline", "logs", "latest", "fail", "--backend-store-uri", backend_uri).stdout
    assert "fail — FAILED, exit code 7" in text and "about to fail" in text and "talk" not in text
    missing = run_orchard(tools, root, "pipeline", "logs", "0000000000", "--backend-store-uri", backend_uri, check=False)
    assert missing.returncode != 0 and "no pipeline run" in missing.stderr

    # Fixed and run again: a second run, newest first; the stage that already ran is recorded unchanged.
    (root / "dvc.yaml").write_text(PIPELINE.replace("exit 7", "touch never.txt"))
    run_orchard(tools, root, "repro", "--backend-store-uri", backend_uri)
    newest, older = runs(tools, root, backend_uri)
    assert newest["status"] == "SUCCEEDED" and older["run_id"] == run["run_id"]
    assert {s["stage"]: s["status"] for s in newest["stages"]} == {"talk": "UNCHANGED", "fail": "SUCCEEDED", "after": "SUCCEEDED"}
    table = run_orchard(tools, root, "pipeline", "runs", "--backend-store-uri", backend_uri).stdout
    assert newest["run_id"][:8] in table and "SUCCEEDED" in table and "3/3" in table


def test_runs_are_kept_in_the_repository_by_default(tools, tmp_path):
    root = make_repo(tools, tmp_path / "r", PIPELINE.split("  fail:")[0])
    run_orchard(tools, root, "repro")
    assert (root / ".dvc/tmp/orchard.db").is_file()
    out = run_orchard(tools, root, "pipeline", "runs").stdout
    assert "SUCCEEDED" in out and "1/1" in out
    assert_up_to_date(tools, root)  # the store under .dvc/tmp is invisible to dvc


def test_multirun_runs_one_pipeline_per_sweep_point(tools, tmp_path):
    pipeline = """\
stages:
  train:
    cmd: echo "${train.lr} ${train.depth}" >> trained.txt && echo ok > model.txt
    params: [train.lr, train.depth]
    outs: [model.txt]
"""
    root = make_repo(tools, tmp_path / "r", pipeline)
    (root / "params.yaml").unlink()
    (root / "conf").mkdir()
    (root / "conf/config.yaml").write_text("train:\n  lr: 0.1\n  depth: 3\n")
    uri = f"sqlite:///{tmp_path}/runs.db"
    r = run_orchard(tools, root, "repro", "--multirun", "train.lr=0.01,0.02", "train.depth=4,5", "--json",
                    "--backend-store-uri", uri)
    jobs = json.loads(r.stdout)
    assert [j["overrides"] for j in jobs] == [
        ["train.lr=0.01", "train.depth=4"], ["train.lr=0.01", "train.depth=5"],
        ["train.lr=0.02", "train.depth=4"], ["train.lr=0.02", "train.depth=5"]]
    assert (root / "trained.txt").read_text().split("\n")[:4] == ["0.01 4", "0.01 5", "0.02 4", "0.02 5"]
    assert "[multirun] #3 : train.lr=0.02 train.depth=5" in r.stderr
    recorded = runs(tools, root, uri)
    assert sorted(tuple(x["overrides"]) for x in recorded) == sorted(tuple(j["overrides"]) for j in jobs)
    assert {x["status"] for x in recorded} == {"SUCCEEDED"}


# The slow stage notes which worker runs it, then waits for the test to create `release`.
SLOW = "stages:\n" + one_stage(
    "slow",
    """sh -c 'echo "$ORCHARD_WORKER" >> attempts.txt; while [ ! -f release ]; do sleep 0.05; done; cp data/in.txt slow.txt'""",
    "slow.txt",
) + """\
  after:
    cmd: sh -c 'cat slow.txt slow.txt > after.txt'
    deps: [slow.txt]
    outs: [after.txt]
"""


class Worker:
    def __init__(self, tools, root, uri, name):
        self.name = name
        self.log = open(root.parent / f"{name}.log", "ab")
        self.proc = subprocess.Popen(
            [BIN, "worker", "--backend-store-uri", uri, "--id", name, "--lease-seconds", "1.5", "--poll-ms", "50"],
            cwd=root, env=tools.env, stdout=self.log, stderr=self.log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_two_workers_and_one_killed_mid_stage(tools, tmp_path, backend_uri):
    root = make_repo(tools, tmp_path / "r", SLOW)
    out = run_orchard(tools, root, "repro", "--queue", "--json", "--backend-store-uri", backend_uri).stdout
    [queued] = json.loads(out)
    assert queued["stages"] == 2
    assert runs(tools, root, backend_uri)[0]["status"] == "QUEUED"
    workers = {name: Worker(tools, root, backend_uri, name) for name in ("w-one", "w-two")}
    try:
        attempts = root / "attempts.txt"
        first = wait_for("a worker to start the stage", lambda: attempts.is_file() and attempts.read_text().split())[0]
        # SIGKILL: no clean-up of any kind. Its stage command dies with it (parent-death signal).
        os.kill(workers[first].proc.pid, signal.SIGKILL)
        workers[first].proc.wait(timeout=30)
        other = "w-two" if first == "w-one" else "w-one"
        # Once the dead worker's lease has expired the other one takes the stage over.
        wait_for("the other worker to take over", lambda: attempts.read_text().split() == [first, other])
        (root / "release").write_text("")
        run = finished_run(tools, root, backend_uri)
        assert run["status"] == "SUCCEEDED", run
        stages = {s["stage"]: s for s in run["stages"]}
        assert stages["slow"]["worker"] == other and stages["slow"]["status"] == "SUCCEEDED"
        assert stages["after"]["status"] == "SUCCEEDED"
        assert (root / "after.txt").read_text() == "a\nb\na\nb\n"
    finally:
        for w in workers.values():
            w.stop()
    assert_up_to_date(tools, root)
    # dvc.lock as the workers left it is what dvc writes: dvc has nothing to redo.
    assert "slow:" in (root / "dvc.lock").read_text() and "after:" in (root / "dvc.lock").read_text()


def test_a_worker_that_lost_its_lease_stops_its_command(tools, tmp_path, backend_uri):
    # A worker frozen past its lease (SIGSTOP: a long pause, a partitioned machine) comes back to find the
    # stage taken over: its own command must stop rather than run beside the other worker's.
    pipeline = SLOW.replace('echo "$ORCHARD_WORKER" >> attempts.txt;', 'echo "$ORCHARD_WORKER" >> attempts.txt; echo $$ > "pid-$ORCHARD_WORKER";')
    root = make_repo(tools, tmp_path / "r", pipeline)
    run_orchard(tools, root, "repro", "--queue", "--backend-store-uri", backend_uri)
    workers = {name: Worker(tools, root, backend_uri, name) for name in ("w-one", "w-two")}
    try:
        attempts = root / "attempts.txt"
        first = wait_for("a worker to start the stage", lambda: attempts.is_file() and attempts.read_text().split())[0]
        other = "w-two" if first == "w-one" else "w-one"
        pid = int(wait_for("its command's pid", lambda: (root / f"pid-{first}").is_file() and (root / f"pid-{first}").read_text().strip()))
        workers[first].proc.send_signal(signal.SIGSTOP)
        wait_for("the other worker to take over", lambda: attempts.read_text().split() == [first, other])
        assert os.path.exists(f"/proc/{pid}")  # frozen, its command still runs
        workers[first].proc.send_signal(signal.SIGCONT)
        wait_for("the frozen worker's command to stop", lambda: gone(pid), timeout=20)
        (root / "release").write_text("")
        run = finished_run(tools, root, backend_uri)
        assert run["status"] == "SUCCEEDED", run
        stages = {s["stage"]: s for s in run["stages"]}
        assert stages["slow"]["worker"] == other and stages["slow"]["status"] == "SUCCEEDED"
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGCONT)
            w.stop()
    assert_up_to_date(tools, root)


def test_server_queues_scheduled_runs_for_workers(tools, tmp_path, backend_uri):
    root = make_repo(tools, tmp_path / "r", """\
stages:
  tick:
    cmd: sh -c 'date +%s%N >> ticks.txt'
    always_changed: true
""")
    bad = run_orchard(tools, root, "pipeline", "schedule", "add", "nightly", "--cron", "61 * * * *",
                      "--backend-store-uri", backend_uri, check=False)
    assert bad.returncode != 0 and "invalid cron expression" in bad.stderr
    # Six fields: seconds first — every second, so the test sees it fire.
    out = run_orchard(tools, root, "pipeline", "schedule", "add", "every-second", "--cron", "* * * * * *",
                      "--backend-store-uri", backend_uri).stdout
    assert "fires next at" in out
    listed = json.loads(run_orchard(tools, root, "pipeline", "schedule", "list", "--json", "--backend-store-uri", backend_uri).stdout)
    assert [s["name"] for s in listed] == ["every-second"] and listed[0]["project"] == str(root)
    server = OrchardServer(tmp_path, backend_uri).start()
    worker = Worker(tools, root, backend_uri, "w")
    try:
        done = wait_for("two scheduled runs to finish", lambda: [r for r in runs(tools, root, backend_uri) if r["status"] == "SUCCEEDED"][1:])
        assert all(r["schedule"] == "every-second" for r in done)
    finally:
        worker.stop()
        server.stop()
    run_orchard(tools, root, "pipeline", "schedule", "remove", "every-second", "--backend-store-uri", backend_uri)
    assert "No schedules." in run_orchard(tools, root, "pipeline", "schedule", "list", "--backend-store-uri", backend_uri).stdout
    assert len((root / "ticks.txt").read_text().split()) >= 2


def test_queued_stages_log_into_child_runs_of_the_pipeline_run(tools, tmp_path, orchard, backend_uri):
    """Queued with a tracking server: the pipeline's run opens at once; the worker gives each stage a child
    run (its id in MLFLOW_RUN_ID for the stage's `mlflow` code) and closes the parent when the last stage ends."""
    from mlflow import MlflowClient

    script = tmp_path / "stage.py"
    script.write_text(
        "import json, mlflow\n"
        "mlflow.log_metric('loss', 0.5)\n"
        "json.dump({'acc': 0.9}, open('metrics.json', 'w'))\n"
    )
    root = make_repo(tools, tmp_path / "r", "stages:\n" + tracked_train_stage(script))
    run_orchard(tools, root, "repro", "--queue", "--tracking-uri", orchard.url, "--experiment", "queued",
                "--backend-store-uri", backend_uri)
    client = MlflowClient(orchard.url)
    exp = client.get_experiment_by_name("queued")
    [parent] = client.search_runs([exp.experiment_id])
    assert parent.info.status == "RUNNING"
    worker = Worker(tools, root, backend_uri, "w")
    try:
        [run] = wait_for("the run to finish", lambda: [r for r in runs(tools, root, backend_uri) if r["status"] == "SUCCEEDED"])
    finally:
        worker.stop()
    assert run["tracking_run_id"] == parent.info.run_id
    found = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    train = found["train"]
    assert train.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert train.data.metrics == {"loss": 0.5, "acc": 0.9}
    assert run["stages"][0]["tracking_run_id"] == train.info.run_id
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


def test_a_stage_that_leaves_a_process_behind_does_not_hang(tools, tmp_path):
    # The background sleep keeps the stage's stdout open long after the stage's shell has exited.
    root = make_repo(tools, tmp_path / "r", """\
stages:
  spawn:
    cmd: sh -c 'sleep 60 & echo started'
    deps: [data/in.txt]
""")
    t = time.monotonic()
    r = run_orchard(tools, root, "repro")
    assert time.monotonic() - t < 30 and "started" in r.stdout
    [run] = runs(tools, root, f"sqlite:///{root}/.dvc/tmp/orchard.db")
    assert run["status"] == "SUCCEEDED"


def test_ctrl_c_stops_the_running_command_and_the_run_is_recorded(tools, tmp_path):
    # The slow stage's command runs in a process group of its own (as the terminal's Ctrl-C would not reach
    # it), so orchard must pass the interrupt on; the stages not started yet are recorded as not run.
    root = make_repo(tools, tmp_path / "r", "stages:\n" + one_stage("first", "cp data/in.txt first.txt", "first.txt") + """\
  slow:
    cmd: sh -c 'echo $$ > slow.pid; exec sleep 60'
    deps: [first.txt]
    outs: [slow.txt]
  later:
    cmd: cp first.txt later.txt
    deps: [first.txt]
    outs: [later.txt]
""")
    proc = subprocess.Popen([BIN, "repro"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = int(wait_for("the slow stage to start", lambda: (root / "slow.pid").is_file() and (root / "slow.pid").read_text().strip()))
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t < 20 and proc.returncode != 0
    assert "Interrupted" in err and "not reproduced: slow, later" in err
    # The command itself was stopped, not left running.
    wait_for("the stage's command to be gone", lambda: gone(pid), timeout=10)
    [run] = runs(tools, root, f"sqlite:///{root}/.dvc/tmp/orchard.db")
    assert run["status"] == "FAILED"
    stages = {s["stage"]: s for s in run["stages"]}
    assert stages["first"]["status"] == "SUCCEEDED"
    assert stages["slow"]["status"] == "FAILED" and "interrupted" in stages["slow"]["error"]
    assert stages["later"]["status"] == "BLOCKED" and "interrupted" in stages["later"]["error"]
    # What finished is kept: the next repro resumes with the interrupted stage.
    (root / "dvc.yaml").write_text((root / "dvc.yaml").read_text().replace("exec sleep 60", "touch slow.txt"))
    r = run_orchard(tools, root, "repro", "--json")
    assert {s["stage"]: s["state"] for s in json.loads(r.stdout)} == {"first": "unchanged", "slow": "ran", "later": "ran"}


def test_a_failed_stage_records_every_attempt(tools, tmp_path, backend_uri):
    # Two retries, so three attempts: the stage's `meta` follows the keys one_stage writes.
    pipeline = "stages:\n" + one_stage("never", "sh -c 'echo try >> tries.log; exit 5'", "never.txt")
    root = make_repo(tools, tmp_path / "r", pipeline + "    meta:\n      orchard: {retries: 2, retry_delay: 0}\n")
    r = run_orchard(tools, root, "repro", "--backend-store-uri", backend_uri, check=False)
    assert r.returncode != 0
    assert (root / "tries.log").read_text() == "try\n" * 3
    [run] = runs(tools, root, backend_uri)
    [stage] = run["stages"]
    assert stage["status"] == "FAILED" and stage["attempts"] == 3 and stage["exit_code"] == 5
