"""Bad input on every engine: wrong JSON types are refused naming the field (as MLflow's parser refuses them),
and hostile strings — a NUL character, a lone surrogate, a megabyte — never make a route answer 5xx. Each test
runs on SQLite and on PostgreSQL, which must answer alike."""

from __future__ import annotations

import json
import re

import pytest
import requests

NUL = "a\u0000b"
MEGABYTE = "x" * (1 << 20)


def api(orchard, method, path, body=None, **params):
    return requests.request(method, f"{orchard.url}/api/2.0/mlflow/{path}", json=body, params=params or None)


def raw(orchard, method, path, text):
    """A body sent as written (json.dumps would not let a lone surrogate through unescaped)."""
    headers = {"Content-Type": "application/json"}
    return requests.request(method, f"{orchard.url}/api/2.0/mlflow/{path}", data=text.encode("utf-8", "surrogatepass"), headers=headers)


def setup(orchard):
    exp = api(orchard, "POST", "experiments/create", {"name": "bad-input"}).json()["experiment_id"]
    run = api(orchard, "POST", "runs/create", {"experiment_id": exp}).json()["run"]["info"]["run_id"]
    api(orchard, "POST", "registered-models/create", {"name": "m"})
    api(orchard, "POST", "model-versions/create", {"name": "m", "source": "s3://b/m", "run_id": run})
    return exp, run


def test_wrong_json_types_are_refused_naming_the_field(orchard):
    exp, run = setup(orchard)
    r = api(orchard, "POST", "experiments/create", {"name": 123})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json()["message"].startswith("Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'.")
    assert api(orchard, "GET", "experiments/get-by-name", experiment_name="123").status_code == 404, "nothing created"

    r = api(orchard, "POST", "runs/update", {"run_id": 31, "status": "FINISHED"})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("Invalid value 31 for parameter 'run_id' supplied")

    r = api(orchard, "POST", "runs/log-batch", {"run_id": run, "params": [{"key": 5, "value": "1"}]})
    assert r.status_code == 400 and "'params[0].key'" in r.json()["message"], r.text
    r = api(orchard, "PATCH", "model-versions/update", {"name": "m", "version": 1, "description": "d"})
    assert r.status_code == 400 and "'version'" in r.json()["message"], "a version is a string, as in MLflow"
    r = api(orchard, "POST", "registered-models/create", {"name": ["m2"]})
    assert r.status_code == 400 and "Value was of type 'list'" in r.json()["message"]
    r = api(orchard, "POST", "runs/search", {"experiment_ids": [exp], "run_view_type": 3})
    assert r.ok, "an enum may be sent as its number, as protobuf's JSON allows"


# Each route with a valid body; every string field of it is then replaced with hostile values in turn.
ROUTES = [
    ("POST", "experiments/create", lambda e, r: {"name": "n", "artifact_location": "/tmp/x", "tags": [{"key": "k", "value": "v"}]}),
    ("POST", "experiments/update", lambda e, r: {"experiment_id": e, "new_name": "renamed"}),
    ("POST", "experiments/set-experiment-tag", lambda e, r: {"experiment_id": e, "key": "k", "value": "v"}),
    ("POST", "runs/create", lambda e, r: {"experiment_id": e, "user_id": "u", "run_name": "rn", "tags": [{"key": "k", "value": "v"}]}),
    ("POST", "runs/update", lambda e, r: {"run_id": r, "run_name": "rn"}),
    ("POST", "runs/log-parameter", lambda e, r: {"run_id": r, "key": "p", "value": "v"}),
    ("POST", "runs/set-tag", lambda e, r: {"run_id": r, "key": "t", "value": "v"}),
    ("POST", "runs/log-metric", lambda e, r: {"run_id": r, "key": "m", "value": 1, "timestamp": 1}),
    ("POST", "runs/log-batch", lambda e, r: {"run_id": r, "params": [{"key": "p2", "value": "v"}], "tags": [{"key": "t2", "value": "v"}]}),
    ("POST", "runs/log-inputs", lambda e, r: {"run_id": r, "datasets": [{"dataset": {"name": "d", "digest": "dg", "source_type": "local", "source": "s"}}]}),
    ("POST", "runs/search", lambda e, r: {"experiment_ids": [e], "filter": "params.p = 'v'"}),
    ("POST", "experiments/search", lambda e, r: {"filter": "name = 'n'"}),
    ("POST", "registered-models/create", lambda e, r: {"name": "rm", "description": "d"}),
    ("POST", "registered-models/rename", lambda e, r: {"name": "m", "new_name": "m"}),
    ("POST", "registered-models/set-tag", lambda e, r: {"name": "m", "key": "k", "value": "v"}),
    ("POST", "registered-models/alias", lambda e, r: {"name": "m", "alias": "champion", "version": "1"}),
    ("POST", "model-versions/create", lambda e, r: {"name": "m", "source": "s3://b/m", "run_id": r, "description": "d"}),
    ("POST", "model-versions/set-tag", lambda e, r: {"name": "m", "version": "1", "key": "k", "value": "v"}),
    ("POST", "logged-models", lambda e, r: {"experiment_id": e, "name": "lm", "source_run_id": r}),
    ("GET", "experiments/get-by-name", lambda e, r: {"experiment_name": "n"}),
    ("GET", "runs/get", lambda e, r: {"run_id": r}),
    ("GET", "registered-models/get", lambda e, r: {"name": "m"}),
    ("GET", "metrics/get-history", lambda e, r: {"run_id": r, "metric_key": "m"}),
]


def string_fields(body, path=()):
    """The paths of the string leaves of a body (into lists and objects)."""
    items = body.items() if isinstance(body, dict) else enumerate(body)
    for k, v in items:
        if isinstance(v, str):
            yield (*path, k)
        elif isinstance(v, (dict, list)):
            yield from string_fields(v, (*path, k))


def replaced(body, path, value):
    body = json.loads(json.dumps(body))
    at = body
    for k in path[:-1]:
        at = at[k]
    at[path[-1]] = value
    return body


def send(orchard, method, path, body):
    if method == "GET":
        return api(orchard, "GET", path, **body)
    return api(orchard, method, path, body)


@pytest.mark.parametrize("method,path,make", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_hostile_strings_get_a_clear_answer_on_every_engine(orchard, method, path, make):
    exp, run = setup(orchard)
    body = make(exp, run)
    for field in string_fields(body):
        name = next(k for k in reversed(field) if isinstance(k, str))  # an item of a string list: the list
        values = [NUL, MEGABYTE] if method != "GET" else [NUL, "y" * 3000]
        for value in values:
            r = send(orchard, method, path, replaced(body, field, value))
            assert r.status_code < 500, (method, path, field, len(value), r.status_code, r.text[:300])
            if r.status_code >= 400:
                assert set(r.json()) == {"error_code", "message"}, r.text[:300]
            if value == NUL:
                assert r.status_code == 400, (method, path, field, r.text[:300])
                assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
                # The field is named with its place (`tags[0].key`), as MLflow names nested fields.
                assert re.search(rf"parameter '([^']*[.\]])?{name}'", r.json()["message"]), r.json()["message"]
        if method != "GET":
            # A lone surrogate cannot be decoded as UTF-8 text: a 400 for the body, never a 500.
            text = json.dumps(replaced(body, field, "PLACEHOLDER")).replace("PLACEHOLDER", "\\ud800")
            r = raw(orchard, method, path, text)
            assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text[:300]


def test_nul_in_a_path_and_long_model_names(orchard):
    setup(orchard)
    for url in [
        f"{orchard.url}/api/2.0/mlflow/logged-models/m-%00",
        f"{orchard.url}/api/2.0/mlflow/logged-models/m-%00/tags/k",
        f"{orchard.url}/models/m%00/predict",
    ]:
        r = requests.get(url) if "tags" not in url else requests.delete(url)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (url, r.status_code, r.text)
    r = requests.get(f"{orchard.url}/api/2.0/mlflow/logged-models/m-%FF%FE")
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", "not plain text"
    r = requests.post(f"{orchard.url}/v2/models/m%00/infer", json={"inputs": []})
    assert r.status_code == 400 and "error" in r.json()
    r = api(orchard, "POST", "registered-models/create", {"name": "n" * 257})
    assert r.status_code == 400 and r.json()["message"] == "'name' exceeds the maximum length of 256 characters"
    assert api(orchard, "POST", "registered-models/create", {"name": "n" * 256}).ok
