"""Shared fixtures of the interop suite.

`orchard` starts the real binary (ORCHARD_BIN, default target/debug/orchard) on a free port, against a fresh
SQLite file or a fresh PostgreSQL database: every test that uses it runs once per backend. Later suites (data,
config, serving) add their own fixtures here and reuse `OrchardServer`.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

# On failure the asserts of pipelines.py (assert_up_to_date) show the values they compared, as the tests' own
# do: pytest rewrites the asserts of test modules and conftest files only, unless told.
pytest.register_assert_rewrite("pipelines")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("ORCHARD_BIN", str(ROOT / "target" / "debug" / "orchard"))
PG_ADMIN = os.environ.get("ORCHARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]


def psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], check=True, capture_output=True)


class OrchardServer:
    """One `orchard server` process. `url` is known once `start()` returns."""

    def __init__(
        self,
        workdir: pathlib.Path,
        backend_uri: str,
        extra_args: list[str] | None = None,
        artifacts_uri: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.backend_uri = backend_uri
        self.extra_args = extra_args or []
        self.artifacts_uri = artifacts_uri or f"file://{workdir / 'artifacts'}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log = workdir / "orchard.log"

    def start(self) -> "OrchardServer":
        cmd = [
            BIN, "server", "--port", "0",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", self.artifacts_uri,
            *self.extra_args,
        ]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env)
        # The server prints its URL once the port is bound: from then on connections are accepted.
        line = self.proc.stdout.readline()
        if not line.startswith("Orchard server listening on "):
            self.proc.kill()
            raise RuntimeError(f"orchard did not start: {line!r}\n{self.log.read_text()}")
        self.url = line.rsplit(" ", 1)[-1].strip()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(tmp_path):
    """A real S3-compatible server (moto's, from PyPI) in its own process, speaking HTTP on loopback."""
    import boto3
    import botocore.exceptions

    port = free_port()
    log = open(tmp_path / "moto.log", "ab")
    proc = subprocess.Popen(
        [str(pathlib.Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    # Wait until it answers (a readiness check, bounded), then make the bucket.
    deadline = time.monotonic() + 30
    while True:
        try:
            s3.create_bucket(Bucket="orchard")
            break
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("moto_server did not start: " + (tmp_path / "moto.log").read_text())
            time.sleep(0.05)
    yield {"url": url, "client": s3, "env": {**creds, "AWS_ENDPOINT_URL": url}}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
def backend_uri(request, tmp_path):
    """A fresh, empty metadata database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/orchard.db"
        return
    name = f"orchard_it_{uuid.uuid4().hex}"
    psql(f"CREATE DATABASE {name}")
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def orchard(backend_uri, tmp_path):
    server = OrchardServer(tmp_path, backend_uri).start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_client(orchard, monkeypatch):
    """The real mlflow client, pointed at Orchard."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", orchard.url)
    mlflow.set_tracking_uri(orchard.url)
    yield mlflow.MlflowClient(orchard.url)
    while mlflow.active_run():
        mlflow.end_run()
