"""Orchard's Python worker: answers requests for one MLflow model through `mlflow.pyfunc`, with MLflow's own
scoring code, so that a model Orchard cannot run natively predicts exactly as under `mlflow models serve`.

Started by `orchard serve` (and the gateway of `orchard server`) as `python -c <this> <model folder>`. It speaks
one JSON object per line: on stdout first {"ready": {...}} or {"failed": "..."}, then for each request read from
stdin ({"content_type": ..., "body": ...}) one answer ({"status": ..., "mimetype": ..., "body": ...}). Whatever
the model's own code prints goes to stderr, so that it cannot break the protocol.
"""

import json
import os
import sys


# MLflow's column types as Open Inference Protocol datatypes (for the v2 metadata of the model).
DATATYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL", "string": "BYTES",
             "float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32", "bool": "BOOL"}


def named_inputs(schema):
    """The named columns of the model's input signature, with their datatypes (none without a signature)."""
    if schema is None or not schema.has_input_names():
        return []
    return [{"name": name, "datatype": DATATYPES.get(str(getattr(t, "name", t)), "BYTES")}
            for name, t in zip(schema.input_names(), schema.input_types())]


def main():
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message):
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        import mlflow
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import load_model, scoring_server

        model = load_model(sys.argv[1])
        schema = model.metadata.get_input_schema()
        loader = model.metadata.flavors.get("python_function", {}).get("loader_module", "")
    except BaseException as e:  # noqa: BLE001 - whatever stops the load is reported, then the worker exits
        send({"failed": f"{type(e).__name__}: {e}"})
        return 1
    # What MLflow's scoring server sets, for models that behave differently when served.
    os.environ["_MLFLOW_IS_IN_SERVING_ENVIRONMENT"] = "true"
    send({"ready": {"mlflow": mlflow.__version__, "python": sys.version.split()[0], "loader_module": loader,
                    "inputs": named_inputs(schema)}})

    for line in sys.stdin.buffer:
        request = json.loads(line.decode("utf-8"))
        try:
            answer = scoring_server.invocations(request["body"], request["content_type"], model, schema)
            reply = {"status": answer.status, "mimetype": answer.mimetype, "body": answer.response}
        except MlflowException as e:
            reply = {"status": e.get_http_status_code(), "mimetype": "application/json", "body": e.serialize_as_json()}
        except Exception as e:  # noqa: BLE001 - a failing model is an answer, not the end of the worker
            body = json.dumps({"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"})
            reply = {"status": 500, "mimetype": "application/json", "body": body}
        send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
