"""What was acknowledged stays: `kill -9` of the server loses no write answered with 200."""

from __future__ import annotations

import signal

import mlflow
import requests

from conftest import OrchardServer


def test_acknowledged_writes_survive_kill_9(backend_uri, tmp_path):
    server = OrchardServer(tmp_path, backend_uri).start()
    client = mlflow.MlflowClient(server.url)
    exp = client.create_experiment("durable")
    run = client.create_run(exp)
    run_id = run.info.run_id
    for step in range(200):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_param(run_id, "lr", "0.1")
    client.set_tag(run_id, "last", "write")
    requests.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/a.txt", data=b"kept").raise_for_status()
    server.kill9()  # no shutdown, no checkpoint: only what was committed before each 200

    again = OrchardServer(tmp_path, backend_uri).start()
    try:
        client = mlflow.MlflowClient(again.url)
        got = client.get_run(run_id)
        assert got.data.params == {"lr": "0.1"}
        assert got.data.tags["last"] == "write"
        assert len(client.get_metric_history(run_id, "loss")) == 200
        assert got.data.metrics["loss"] == 1.0 / 200
        r = requests.get(f"{again.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/a.txt")
        assert r.content == b"kept"
    finally:
        again.stop()


def test_sigterm_shuts_down_cleanly(backend_uri, tmp_path):
    server = OrchardServer(tmp_path, backend_uri).start()
    assert requests.get(f"{server.url}/health").ok
    assert server.stop(signal.SIGTERM) == 0
    log = server.log.read_text()
    assert "shutting down" in log and "stopped" in log
