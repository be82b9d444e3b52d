"""The real `mlflow` client's model registry against `orchard server`, on SQLite and on PostgreSQL: registered
models, versions, stages, tags, aliases, searches, and loading models through `models:/` URIs."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException

from test_tracking import iris

# Stages are deprecated in the client (since 2.9) but still part of the API Orchard serves.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_registered_model_lifecycle(mlflow_client):
    c = mlflow_client
    m = c.create_registered_model("iris", tags={"team": "ml", "tier": "gold"}, description="flowers")
    assert m.name == "iris" and m.description == "flowers"
    assert m.tags == {"team": "ml", "tier": "gold"}
    assert m.creation_timestamp == m.last_updated_timestamp > 0

    with pytest.raises(MlflowException) as e:
        c.create_registered_model("iris")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert "Registered Model (name=iris) already exists." in e.value.message

    assert c.update_registered_model("iris", description="petals").description == "petals"
    c.set_registered_model_tag("iris", "tier", "silver")
    c.delete_registered_model_tag("iris", "team")
    c.delete_registered_model_tag("iris", "never-set")  # a missing tag is not an error
    assert c.get_registered_model("iris").tags == {"tier": "silver"}

    c.rename_registered_model("iris", "iris-v2")
    with pytest.raises(MlflowException) as e:
        c.get_registered_model("iris")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Registered Model with name=iris not found" in e.value.message
    renamed = c.get_registered_model("iris-v2")
    assert renamed.tags == {"tier": "silver"} and renamed.description == "petals"

    c.delete_registered_model("iris-v2")
    with pytest.raises(MlflowException) as e:
        c.delete_registered_model("iris-v2")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_registered_models(mlflow_client):
    c = mlflow_client
    for i in range(7):
        c.create_registered_model(f"model-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    c.create_registered_model("other")
    names = [m.name for m in c.search_registered_models()]
    assert names == sorted(names) and len(names) == 8  # default order: name ASC

    assert [m.name for m in c.search_registered_models("name LIKE 'model-%'", order_by=["name DESC"])] == [
        f"model-{i}" for i in range(6, -1, -1)
    ]
    assert {m.name for m in c.search_registered_models("tags.parity = 'odd'")} == {"model-1", "model-3", "model-5"}
    assert [m.name for m in c.search_registered_models("name ILIKE 'OTHER'")] == ["other"]

    # Paging: three pages of three, the last without a token.
    page1 = c.search_registered_models(max_results=3)
    page2 = c.search_registered_models(max_results=3, page_token=page1.token)
    page3 = c.search_registered_models(max_results=3, page_token=page2.token)
    assert len(page1) == 3 and len(page2) == 3 and len(page3) == 2 and not page3.token
    assert [m.name for m in page1 + page2 + page3] == names

    with pytest.raises(MlflowException) as e:
        c.search_registered_models("metrics.acc > 1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        c.search_registered_models(order_by=["creation_timestamp"])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def train_and_register(name="iris", n=1):
    """Logs `n` sklearn models in one run, each registered under `name`; returns (run id, versions, data)."""
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, _ = iris()
    mlflow.set_experiment("registry")
    models, infos = [], []
    with mlflow.start_run() as run:
        for i in range(n):
            clf = LogisticRegression(max_iter=200 + i * 100, C=1.0 / (i + 1)).fit(x_train, y_train)
            infos.append(mlflow.sklearn.log_model(clf, name=f"model{i}", registered_model_name=name))
            models.append(clf)
    return run.info.run_id, infos, models, x_test


def test_log_model_registers_versions_and_aliases_load(mlflow_client):
    c = mlflow_client
    run_id, infos, models, x_test = train_and_register("iris", n=2)
    assert [str(i.registered_model_version) for i in infos] == ["1", "2"]

    v1 = c.get_model_version("iris", "1")
    assert v1.run_id == run_id and v1.current_stage == "None" and v1.status == "READY"
    assert v1.source == f"models:/{infos[0].model_id}"
    # The logged model remembers the versions made from it (MLflow 3's mlflow.modelVersions tag).
    assert '"version": "1"' in c.get_logged_model(infos[0].model_id).tags["mlflow.modelVersions"]
    uri = c.get_model_version_download_uri("iris", "1")
    assert uri.endswith(f"/models/{infos[0].model_id}/artifacts")

    c.set_registered_model_alias("iris", "champion", "1")
    c.set_registered_model_alias("iris", "challenger", "2")
    assert c.get_model_version_by_alias("iris", "champion").version == "1"
    assert set(c.get_registered_model("iris").aliases) == {"champion", "challenger"}
    assert c.get_model_version("iris", "2").aliases == ["challenger"]

    # The same files come back through every URI form, with the predictions of the model that was logged.
    for uri, clf in [
        ("models:/iris@champion", models[0]),
        ("models:/iris/1", models[0]),
        ("models:/iris@challenger", models[1]),
        ("models:/iris/latest", models[1]),
        (f"models:/{infos[1].model_id}", models[1]),
    ]:
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(x_test), clf.predict(x_test), err_msg=uri)

    # Moving the alias moves what it loads.
    c.set_registered_model_alias("iris", "champion", "2")
    loaded = mlflow.pyfunc.load_model("models:/iris@champion")
    np.testing.assert_array_equal(loaded.predict(x_test), models[1].predict(x_test))

    c.delete_registered_model_alias("iris", "challenger")
    with pytest.raises(MlflowException) as e:
        c.get_model_version_by_alias("iris", "challenger")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Registered model alias challenger not found." in e.value.message


def test_register_model_from_a_run_and_stages(mlflow_client):
    c = mlflow_client
    run_id, infos, models, x_test = train_and_register("first", n=1)
    # Registering a runs:/ URI of an MLflow 3 logged model finds the model by name in the run.
    mv = mlflow.register_model(f"runs:/{run_id}/model0", "iris")
    assert mv.version == "1" and mv.run_id == run_id
    mv2 = mlflow.register_model(f"models:/{infos[0].model_id}", "iris")
    assert mv2.version == "2"

    staged = c.transition_model_version_stage("iris", "1", "staging")
    assert staged.current_stage == "Staging"
    c.transition_model_version_stage("iris", "2", "Production")
    latest = {v.current_stage: v.version for v in c.get_latest_versions("iris")}
    assert latest == {"Staging": "1", "Production": "2"}
    assert [v.version for v in c.get_latest_versions("iris", stages=["Production"])] == ["2"]
    loaded = mlflow.pyfunc.load_model("models:/iris/Production")
    np.testing.assert_array_equal(loaded.predict(x_test), models[0].predict(x_test))

    # archive_existing_versions moves the other Production version to Archived.
    c.transition_model_version_stage("iris", "1", "Production", archive_existing_versions=True)
    assert c.get_model_version("iris", "2").current_stage == "Archived"
    with pytest.raises(MlflowException) as e:
        c.transition_model_version_stage("iris", "1", "Promoted")
    assert "Invalid Model Version stage: Promoted" in e.value.message


def test_model_version_updates_tags_search_and_delete(mlflow_client):
    c = mlflow_client
    run_id, infos, _, _ = train_and_register("iris", n=3)
    c.update_model_version("iris", "2", description="the good one")
    assert c.get_model_version("iris", "2").description == "the good one"
    c.set_model_version_tag("iris", "2", "validated", "yes")
    c.set_model_version_tag("iris", "3", "validated", "no")
    c.delete_model_version_tag("iris", "3", "validated")
    assert c.get_model_version("iris", "2").tags == {"validated": "yes"}
    assert c.get_model_version("iris", "3").tags == {}

    assert [v.version for v in c.search_model_versions("name = 'iris'", order_by=["version_number ASC"])] == [
        "1", "2", "3",
    ]
    assert [v.version for v in c.search_model_versions("name = 'iris' AND version_number > 1")] and {
        v.version for v in c.search_model_versions("name = 'iris' AND version_number > 1")
    } == {"2", "3"}
    assert [v.version for v in c.search_model_versions("tags.validated = 'yes'")] == ["2"]
    assert len(c.search_model_versions(f"run_id = '{run_id}'")) == 3
    assert len(c.search_model_versions(f"run_id IN ('{run_id}', 'nope')")) == 3
    page = c.search_model_versions("name = 'iris'", max_results=2, order_by=["version_number DESC"])
    assert [v.version for v in page] == ["3", "2"] and page.token
    rest = c.search_model_versions("name = 'iris'", max_results=2, order_by=["version_number DESC"], page_token=page.token)
    assert [v.version for v in rest] == ["1"] and not rest.token

    c.set_registered_model_alias("iris", "champion", "3")
    c.delete_model_version("iris", "3")
    with pytest.raises(MlflowException) as e:
        c.get_model_version("iris", "3")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Model Version (name=iris, version=3) not found" in e.value.message
    # The deleted version's alias went with it, and its number is never given out again.
    assert "champion" not in c.get_registered_model("iris").aliases
    assert mlflow.register_model(f"models:/{infos[0].model_id}", "iris").version == "4"
    assert {v.version for v in c.search_model_versions("name = 'iris'")} == {"1", "2", "4"}

    c.delete_registered_model("iris")
    assert c.search_model_versions("name = 'iris'") == []


def test_registry_errors_on_the_wire(orchard):
    api = f"{orchard.url}/api/2.0/mlflow"

    def call(method, path, **kw):
        r = requests.request(method, f"{api}/{path}", timeout=10, **kw)
        return r.status_code, r.json()

    assert call("POST", "registered-models/create", json={}) == (400, {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Missing value for required parameter 'name'. See the API docs for more information about request parameters.",
    })
    assert call("GET", "registered-models/get", params={"name": "nope"})[0] == 404
    call("POST", "registered-models/create", json={"name": "m"})
    status, body = call("POST", "model-versions/create", json={"name": "m", "source": "s3://bucket/model"})
    assert status == 200 and body["model_version"]["version"] == "1"
    assert body["model_version"]["source"] == "s3://bucket/model"
    status, body = call("GET", "model-versions/get", params={"name": "m", "version": "one"})
    assert (status, body["message"]) == (400, "Parameter 'version' must be an integer, got 'one'.")
    status, body = call("POST", "model-versions/create", json={"name": "unknown", "source": "s3://b/m"})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Sources that climb out of where they point, or local paths outside any run, are refused.
    for source in ["s3://bucket/../secret", "s3://bucket/%2e%2e/secret", "/etc", "file:///etc/passwd"]:
        status, body = call("POST", "model-versions/create", json={"name": "m", "source": source})
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", source
    for alias, message in [
        ("latest", "'latest' alias name (case insensitive) is reserved."),
        ("v3", "Version alias name 'v3' is reserved."),
        ("has space", "Invalid alias name: 'has space'. Names may only contain alphanumerics, underscores (_), and dashes (-)."),
    ]:
        status, body = call("POST", "registered-models/alias", json={"name": "m", "alias": alias, "version": "1"})
        assert (status, body["message"]) == (400, message)
    status, body = call("POST", "registered-models/alias", json={"name": "m", "alias": "ok", "version": "9"})
    assert status == 404 and body["message"] == "Model Version (name=m, version=9) not found"
    # `@latest` is the newest version even without an alias of that name.
    status, body = call("GET", "registered-models/alias", params={"name": "m", "alias": "latest"})
    assert status == 200 and body["model_version"]["version"] == "1"
    status, body = call("GET", "registered-models/search", params={"max_results": "1001"})
    assert status == 400
    status, body = call("POST", "model-versions/transition-stage",
                        json={"name": "m", "version": "1", "stage": "None", "archive_existing_versions": True})
    assert status == 400 and "is not an Active stage" in body["message"]
    # Stages, the search page and the registry routes also answer under /ajax-api.
    r = requests.get(f"{orchard.url}/ajax-api/2.0/mlflow/registered-models/search", timeout=10)
    assert r.status_code == 200 and r.json()["registered_models"][0]["name"] == "m"


def test_local_sources_are_resolved_before_they_are_checked(orchard, tmp_path):
    """A local source is compared with the run's artifact directory after resolving it, as MLflow does:
    `<artifact dir>/model/..` is inside; `<artifact dir>/../x` is not; `file://<host>/…` is refused."""
    api = f"{orchard.url}/api/2.0/mlflow"
    root = tmp_path / "local-artifacts"
    exp = requests.post(f"{api}/experiments/create", json={"name": "local", "artifact_location": f"file://{root}"}).json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
    requests.post(f"{api}/registered-models/create", json={"name": "local"})

    def create(source):
        return requests.post(f"{api}/model-versions/create", json={"name": "local", "source": source, "run_id": run["run_id"]})

    r = create(f"{run['artifact_uri']}/model/..")
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["source"] == f"{run['artifact_uri']}/model/.."
    r = create(f"{run['artifact_uri']}/../../elsewhere")
    assert r.status_code == 400
    # The message names the path as resolved.
    assert r.json()["message"].startswith(f"Invalid model version source: '{root}/")
    assert "contained within the artifact directory of the run specified by the run_id." in r.json()["message"]
    r = create("file://fileserver/share/model")
    assert r.status_code == 400 and r.json()["message"].startswith(
        "file://fileserver/share/model is not a valid remote uri. For remote access on windows")
