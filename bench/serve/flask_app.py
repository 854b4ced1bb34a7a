#!/usr/bin/python3
"""The scikit-learn peer of the serving benchmark: a Flask app served by gunicorn.

It answers the same Open Inference Protocol V2 requests as `finmaas serve` does for the demo credit
model, the way a typical Python model server would: parse the JSON body, build a one-row pandas
frame from the tensors (one tensor per raw column), run a pickled scikit-learn Pipeline, answer
the V2 JSON response.

Two uses:

  * Training (run by bench/serve_bench.py in a child process with one BLAS thread):
        /usr/bin/python3 bench/serve/flask_app.py train --data credit_data.csv --out model.pkl
    fits the Pipeline that matches the demo `finmaas train --model mlp --hidden 32,16 --seed 42`
    (median imputation + standardisation of numeric columns, most-frequent imputation + one-hot of
    categorical ones, MLPClassifier (32, 16) relu, adam lr 0.001, batch 32, L2 0.0001, at most 200
    epochs with early stopping on a 20% validation split, patience 10, seed 42), pickles it and
    prints one JSON line describing it.

  * Serving:
        FM_BENCH_MODEL=model.pkl OPENBLAS_NUM_THREADS=1 \\
            gunicorn -w 2 --chdir bench/serve 'flask_app:create_app()'
    routes: GET /v2/health/ready, POST /v2/models/<name>/infer (the name must be the served one).
"""

import json
import math
import os
import sys

MODEL_NAME = "credit"
MODEL_VERSION = "1"
TARGET = "Status"
POSITIVE = "bad"
SEED = 42


def build_pipeline(numeric, categorical):
    """The scikit-learn equivalent of finmaas's preprocessing and MLP defaults."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                          OneHotEncoder(handle_unknown="ignore")),
             categorical),
        ]
    )  # fmt: skip
    mlp = MLPClassifier(
        hidden_layer_sizes=(32, 16), activation="relu", solver="adam", learning_rate_init=0.001,
        batch_size=32, alpha=0.0001, max_iter=200, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=SEED,
    )  # fmt: skip
    return Pipeline([("prep", prep), ("mlp", mlp)])


def train(data_path, out_path):
    import pickle
    import warnings

    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score

    frame = pd.read_csv(data_path)
    if TARGET not in frame.columns:
        raise SystemExit(f"flask_app train: {data_path} has no column {TARGET!r}")
    y = frame.pop(TARGET).astype(str)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    pipeline = build_pipeline(numeric, categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(frame, y)
    classes = [str(c) for c in pipeline.classes_]
    if POSITIVE not in classes:
        raise SystemExit(f"flask_app train: no class {POSITIVE!r} in {TARGET} ({classes})")
    positive = classes.index(POSITIVE)
    model = {"pipeline": pipeline, "columns": list(frame.columns), "numeric": numeric,
             "classes": classes, "positive": positive}  # fmt: skip
    with open(out_path, "wb") as f:
        pickle.dump(model, f)
    proba = pipeline.predict_proba(frame)[:, positive]
    print(json.dumps({"rows": len(frame), "numeric": numeric, "categorical": categorical,
                      "classes": classes, "epochs_run": int(pipeline[-1].n_iter_),
                      "train_auc": float(roc_auc_score(y == POSITIVE, proba))}))  # fmt: skip


class BadRequest(Exception):
    pass


def parse_row(body, columns, numeric):
    """The one row of a V2 request as {column: [value]}; BadRequest names what is wrong."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"body is not JSON: {e}")
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest("body must be an object with an 'inputs' array")
    row = {}
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
            raise BadRequest("each input needs 'name' and a 'data' array")
        name, data = tensor.get("name"), tensor["data"]
        if name not in columns:
            raise BadRequest(f"unknown input {name!r}")
        if len(data) != 1:
            raise BadRequest(f"input {name!r}: one row expected, got {len(data)} values")
        value = data[0]
        if name in numeric:
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float))):  # fmt: skip
                raise BadRequest(f"input {name!r}: number expected, got {value!r}")
            row[name] = [math.nan if value is None else float(value)]
        else:
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"input {name!r}: string expected, got {value!r}")
            row[name] = [math.nan if value is None else value]  # as read_csv reads NA
    missing = [c for c in columns if c not in row]
    if missing:
        raise BadRequest(f"missing inputs: {', '.join(missing)}")
    return request.get("id"), row


def create_app():
    """The Flask app serving the pickled model named by the environment variable FM_BENCH_MODEL."""
    import pickle

    import pandas as pd
    from flask import Flask, Response, request

    path = os.environ.get("FM_BENCH_MODEL")
    if not path:
        raise SystemExit("flask_app: set FM_BENCH_MODEL to the pickled model")
    with open(path, "rb") as f:
        model = pickle.load(f)
    pipeline, columns = model["pipeline"], model["columns"]
    numeric, classes, positive = set(model["numeric"]), model["classes"], model["positive"]
    app = Flask(__name__)

    def reply(status, value):
        text = json.dumps(value, separators=(",", ":"))
        return Response(text, status=status, mimetype="application/json")

    @app.get("/v2/health/ready")
    def ready():
        return reply(200, {"ready": True})

    @app.post("/v2/models/<name>/infer")
    def infer(name):
        if name != MODEL_NAME:
            return reply(404, {"error": f"model {name!r} not found"})
        try:
            request_id, row = parse_row(request.get_data(), columns, numeric)
        except BadRequest as e:
            return reply(400, {"error": str(e)})
        proba = pipeline.predict_proba(pd.DataFrame(row, columns=columns))[0]
        label = classes[int(proba.argmax())]
        response = {"model_name": MODEL_NAME, "model_version": MODEL_VERSION}
        if request_id is not None:
            response["id"] = request_id
        response["outputs"] = [
            {"name": "probability", "datatype": "FP32", "shape": [1],
             "data": [float(f"{proba[positive]:.7g}")]},
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": [label]},
        ]  # fmt: skip
        return reply(200, response)

    return app


def main():
    import argparse

    parser = argparse.ArgumentParser(description="Train the Flask peer's scikit-learn model.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("train", help="fit the Pipeline on a CSV file and pickle it")
    cmd.add_argument("--data", required=True, help="credit_data.csv")
    cmd.add_argument("--out", required=True, help="the pickle to write")
    opts = parser.parse_args()
    train(opts.data, opts.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
