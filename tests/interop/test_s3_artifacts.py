"""Artifacts on S3-compatible object storage: `--artifacts-destination s3://bucket/prefix`, proxied to the real
mlflow client exactly as with a local folder."""

from __future__ import annotations

import pathlib

import mlflow

from conftest import OrchardServer


def test_artifacts_through_s3(backend_uri, tmp_path, s3_server):
    server = OrchardServer(tmp_path, backend_uri, artifacts_uri="s3://orchard/team/artifacts", env=s3_server["env"]).start()
    try:
        mlflow.set_tracking_uri(server.url)
        mlflow.set_experiment("s3")
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "weights.bin").write_bytes(b"\x00\x01" * 300_000)
        (tmp_path / "model" / "conf.yaml").write_text("lr: 0.1\n")
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(tmp_path / "model"), artifact_path="model")
            mlflow.log_text("hello", "hello.txt")
        run_id, exp_id = run.info.run_id, run.info.experiment_id
        client = mlflow.MlflowClient(server.url)
        assert sorted(f.path for f in client.list_artifacts(run_id, "model")) == ["model/conf.yaml", "model/weights.bin"]
        out = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(tmp_path / "dl")))
        assert (out / "weights.bin").read_bytes() == b"\x00\x01" * 300_000
        # The bytes really are in the bucket, under the prefix.
        keys = sorted(o["Key"] for o in s3_server["client"].list_objects_v2(Bucket="orchard")["Contents"])
        assert keys == [
            f"team/artifacts/{exp_id}/{run_id}/artifacts/hello.txt",
            f"team/artifacts/{exp_id}/{run_id}/artifacts/model/conf.yaml",
            f"team/artifacts/{exp_id}/{run_id}/artifacts/model/weights.bin",
        ]
    finally:
        server.stop()
