"""MLflow's GraphQL API at /graphql, as MLflow's web UI queries it: runs with their experiment and model versions,
run searches, artifact listings, sampled metric histories, dataset summaries and model version searches. Data
logged with the real `mlflow` client; answers checked against what the REST API says of the same objects, and
errors as MLflow's server gives them (HTTP 200, `errors` as a list of messages). SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag


def gql(orchard, query, variables=None, operation=None, method="post"):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation:
        body["operationName"] = operation
    if method == "get":
        import json

        params = dict(body)
        if variables is not None:
            params["variables"] = json.dumps(variables)
        r = requests.get(f"{orchard.url}/graphql", params=params)
    else:
        r = requests.post(f"{orchard.url}/graphql", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_echo_field_answers_over_post_and_get(orchard):
    query = 'query testQuery { test(inputString: "abc") { output } }'
    assert gql(orchard, query, operation="testQuery") == {"data": {"test": {"output": "abc"}}, "errors": None}
    assert gql(orchard, query, method="get")["data"]["test"]["output"] == "abc"
    assert gql(orchard, 'mutation { testMutation(inputString: "x") { output } }')["data"] == {"testMutation": {"output": "x"}}


def test_a_run_with_its_experiment_model_versions_and_metrics(orchard, mlflow_client):
    exp = mlflow_client.create_experiment("graphql-run")
    run = mlflow_client.create_run(exp, tags={"team": "a"})
    rid = run.info.run_id
    mlflow_client.log_param(rid, "lr", "0.1")
    mlflow_client.log_metric(rid, "loss", 0.25, timestamp=7, step=3)
    mlflow_client.log_metric(rid, "nan_metric", math.nan, timestamp=8, step=1)
    mlflow_client.create_registered_model("graphql-model")
    mlflow_client.create_model_version("graphql-model", f"{run.info.artifact_uri}/model", rid)
    query = """
        query testQuery($id: String) @component(name: "Test") {
          mlflowGetRun(input: {runId: $id}) {
            run {
              info { runId runUuid status experimentId startTime endTime lifecycleStage artifactUri }
              data { metrics { key value step timestamp } params { key value } tags { key value } }
              experiment { experimentId name }
              modelVersions { name version runId status }
            }
            apiError { code }
          }
        }"""
    answer = gql(orchard, query, {"id": rid}, "testQuery")
    assert answer["errors"] is None, answer
    got = answer["data"]["mlflowGetRun"]
    assert got["apiError"] is None
    info = got["run"]["info"]
    assert info["runId"] == info["runUuid"] == rid and info["status"] == "RUNNING" and info["experimentId"] == exp
    assert info["startTime"] == str(run.info.start_time), "64-bit times are strings (MLflow's LongString)"
    assert info["endTime"] == "0" and info["lifecycleStage"] == "active" and info["artifactUri"] == run.info.artifact_uri
    metrics = {m["key"]: m for m in got["run"]["data"]["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": 0.25, "step": "3", "timestamp": "7"}
    assert metrics["nan_metric"]["value"] is None, "NaN is not a GraphQL Float: it reads as null, the rest stays"
    assert got["run"]["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {"key": "team", "value": "a"} in got["run"]["data"]["tags"]
    assert got["run"]["experiment"] == {"experimentId": exp, "name": "graphql-run"}
    assert got["run"]["modelVersions"] == [{"name": "graphql-model", "version": "1", "runId": rid, "status": "READY"}]


def test_search_runs_matches_the_rest_search(orchard, mlflow_client):
    exp = mlflow_client.create_experiment("graphql-search")
    runs = [mlflow_client.create_run(exp) for _ in range(3)]
    for i, r in enumerate(runs):
        mlflow_client.log_metric(r.info.run_id, "acc", i / 10)
    mlflow_client.delete_run(runs[0].info.run_id)
    query = """mutation testMutation($input: MlflowSearchRunsInput) {
        mlflowSearchRuns(input: $input) { runs { info { runId } } nextPageToken } }"""
    got = gql(orchard, query, {"input": {"experimentIds": [exp]}})["data"]["mlflowSearchRuns"]
    rest = mlflow_client.search_runs([exp])
    assert [r["info"]["runId"] for r in got["runs"]] == [r.info.run_id for r in rest]
    assert len(got["runs"]) == 2 and got["nextPageToken"] is None

    page = gql(orchard, query, {"input": {"experimentIds": [exp], "filter": "metrics.acc > 0", "orderBy": ["metrics.acc DESC"],
                                          "maxResults": 1, "runViewType": "ALL"}})["data"]["mlflowSearchRuns"]
    assert [r["info"]["runId"] for r in page["runs"]] == [runs[2].info.run_id] and page["nextPageToken"]
    # The same search as a query (MLflow serves both).
    as_query = gql(orchard, query.replace("mutation", "query"), {"input": {"experimentIds": [exp], "runViewType": "DELETED_ONLY"}})
    assert [r["info"]["runId"] for r in as_query["data"]["mlflowSearchRuns"]["runs"]] == [runs[0].info.run_id]

    bad = gql(orchard, query, {"input": {"experimentIds": [exp], "filter": "metrics.acc >"}})
    assert bad["data"] == {"mlflowSearchRuns": None}
    assert len(bad["errors"]) == 1 and "Invalid" in bad["errors"][0], "the REST API's message, as a GraphQL error"


def test_artifact_listing(orchard, mlflow_client, tmp_path):
    exp = mlflow_client.create_experiment("graphql-artifacts")
    rid = mlflow_client.create_run(exp).info.run_id
    f = tmp_path / "test.txt"
    f.write_text("hello world")
    mlflow_client.log_artifact(rid, str(f))
    mlflow_client.log_artifact(rid, str(f), "testDir")
    query = """query q($id: String, $path: String) {
        files: mlflowListArtifacts(input: {runId: $id, path: $path}) { rootUri files { path isDir fileSize } } }"""
    top = gql(orchard, query, {"id": rid})["data"]["files"]
    assert top["files"] == [
        {"path": "test.txt", "isDir": False, "fileSize": "11"},
        {"path": "testDir", "isDir": True, "fileSize": "0"},
    ]
    assert top["rootUri"] == mlflow_client.get_run(rid).info.artifact_uri
    assert gql(orchard, query, {"id": rid, "path": "testDir"})["data"]["files"]["files"] == [
        {"path": "testDir/test.txt", "isDir": False, "fileSize": "11"}
    ]
    escape = gql(orchard, query, {"id": rid, "path": "../../etc"})
    assert escape["data"]["files"] is None and escape["errors"] == ["Invalid path"]


def test_sampled_metric_history_and_model_version_search(orchard, mlflow_client):
    exp = mlflow_client.create_experiment("graphql-history")
    rid = mlflow_client.create_run(exp).info.run_id
    for i in range(10):
        mlflow_client.log_metric(rid, "metric_0", i, step=i)
    query = """query q($ids: [String], $max: Int) {
        mlflowGetMetricHistoryBulkInterval(input: {runIds: $ids, metricKey: "metric_0", maxResults: $max}) {
          metrics { key value step runId } } }"""
    points = gql(orchard, query, {"ids": [rid]})["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert points == [{"key": "metric_0", "value": float(i), "step": str(i), "runId": rid} for i in range(10)]
    sampled = gql(orchard, query, {"ids": [rid], "max": 3})["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert {p["step"] for p in sampled} >= {"0", "9"} and len(sampled) < 10, "first and last step always kept"
    missing = gql(orchard, query, {"ids": []})
    assert missing["data"]["mlflowGetMetricHistoryBulkInterval"] is None and "run_ids" in missing["errors"][0]

    mlflow_client.create_registered_model("graphql-versions")
    for _ in range(2):
        mlflow_client.create_model_version("graphql-versions", "s3://bucket/model", rid)
    versions = gql(orchard, """{ mlflowSearchModelVersions(input: {filter: "name = 'graphql-versions'", maxResults: 1}) {
        modelVersions { name version source } nextPageToken } }""")["data"]["mlflowSearchModelVersions"]
    assert len(versions["modelVersions"]) == 1 and versions["nextPageToken"], "one per page, as asked"
    assert versions["modelVersions"][0]["source"] == "s3://bucket/model"


def test_dataset_summaries(orchard, mlflow_client):
    exp = mlflow_client.create_experiment("graphql-datasets")
    rid = mlflow_client.create_run(exp).info.run_id
    plain = Dataset(name="d1", digest="12345", source_type="script", source="test")
    trained = Dataset(name="d2", digest="12346", source_type="script", source="test")
    mlflow_client.log_inputs(rid, [DatasetInput(plain, []), DatasetInput(trained, [InputTag("mlflow.data.context", "training")])])
    got = gql(orchard, """mutation m($ids: [String]) { mlflowSearchDatasets(input: {experimentIds: $ids}) {
        datasetSummaries { experimentId name digest context } } }""", {"ids": [exp]})
    summaries = sorted(got["data"]["mlflowSearchDatasets"]["datasetSummaries"], key=lambda s: s["digest"])
    assert summaries == [
        {"experimentId": exp, "name": "d1", "digest": "12345", "context": ""},
        {"experimentId": exp, "name": "d2", "digest": "12346", "context": "training"},
    ]


def test_errors_are_graphql_errors(orchard, mlflow_client):
    missing = gql(orchard, '{ mlflowGetExperiment(input: {experimentId: "999999"}) { experiment { name } } }')
    assert missing["data"] == {"mlflowGetExperiment": None}
    assert missing["errors"] == [mlflow_client_error(orchard, "/api/2.0/mlflow/experiments/get?experiment_id=999999")]
    wrong_field = gql(orchard, "{ mlflowGetExperiment { experiment { color } } }")
    assert wrong_field["data"] is None and "color" in wrong_field["errors"][0]
    syntax = gql(orchard, "{ mlflowGetExperiment(")
    assert syntax["data"] is None and len(syntax["errors"]) == 1
    typed = gql(orchard, "query q($n: Int) { mlflowGetMetricHistoryBulkInterval(input: {maxResults: $n}) { metrics { key } } }", {"n": "x"})
    assert typed["data"] is None and typed["errors"], "a variable of the wrong type is refused before anything runs"
    r = requests.post(f"{orchard.url}/graphql", json={"variables": {}})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "'query'" in r.json()["message"]


def mlflow_client_error(orchard, path):
    """The message the REST API gives for the same request."""
    return requests.get(f"{orchard.url}{path}").json()["message"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("{" + " ".join(f'k{i}: test(inputString: "a") {{ output }}' for i in range(12)) + "}",
         "GraphQL queries should have at most 10 root fields, got 12 root fields"),
        ('{ mlflowGetExperiment(input: {experimentId: "1"}) {' + " ".join(f"e{i}: experiment {{ name }}" for i in range(12)) + "} }",
         "GraphQL queries should have at most 10 aliases, got 12 aliases"),
        ('{ mlflowGetExperiment(input: {experimentId: "1"}) { experiment { ' + "name { " * 12 + "name" + " }" * 12 + " } } }",
         "Query exceeds maximum depth of 10"),
        ('{ mlflowGetExperiment(input: {experimentId: "1"}) { experiment { ' + " ".join(f"f{i} {{ name }}" for i in range(1002)) + " } } }",
         "Query exceeds maximum total selections of 1000"),
        ('{ mlflowGetRun(input: {runId: "1"}) { run { ' + " ".join(
            "... on MlflowRunExtension { " + " ".join(f"v{j}{i}: modelVersions {{ name }}" for i in range(6)) + " }" for j in range(2))
         + " } } }",
         "GraphQL queries should have at most 10 aliases, got 12 aliases"),
    ],
    ids=["root-fields", "aliases", "depth", "selections", "aliases-over-fragments"],
)
def test_queries_are_bounded_as_mlflow_bounds_them(orchard, query, message):
    got = gql(orchard, query)
    assert got["data"] is None and got["errors"][0].startswith(message), got
