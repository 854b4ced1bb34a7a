"""`finmaas serve`: every endpoint of the route table, every answer against `finmaas predict`,
every error status, request ids, the access log and /metrics.

Starts the real server on 127.0.0.1:0 with a registry home of small models trained here (binary,
multiclass, regression, and a synthetic binary one with a 0/1 column for BOOL tensors), speaks
HTTP/JSON to it and checks each body field by field. Scores are compared with `finmaas predict`
on the same rows (absolute tolerance 1e-6), and the pre-encoded 'input' tensor with an encoding
computed here from the `finmaas inspect` preprocessing parameters.

The server runs with its defaults (API keys, durable audit log); each request carries the key
of the role that would make it (fmserve.role_for). Requests without a key, with a bad one, or
with a role the route does not allow are among the error statuses checked; the keys and audit
endpoints are exercised with admin and auditor keys.

Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_serve.py
"""
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

JSON = {"Content-Type": "application/json"}


def setup(w):
    c = fm.credit_context(w, 200)
    c.bin_a = fm.train(fm.CREDIT, "Status", w.join("credit_a.fmm"), "--positive", "bad", seed=1)
    c.bin_b = fm.train(fm.CREDIT, "Status", w.join("credit_b.fmm"), "--positive", "bad", seed=2)
    c.multi = fm.train(fm.CREDIT, "Marital", w.join("marital.fmm"), "--drop", "Status")
    c.reg = fm.train(fm.CREDIT, "Amount", w.join("amount.fmm"))
    flags_csv = fm.flags_data(w.join("flags.csv"))
    c.flags = fm.train(flags_csv, "y", w.join("flags.fmm"), "--positive", "yes")
    fh, frows = fm.read_csv(flags_csv)
    c.flag_rows = [dict(zip(fh, r)) for r in frows[:60]]
    c.flag_rows_csv = fm.write_csv(w.join("flag_rows.csv"), fh, frows[:60])
    c.pred_a = fm.predict(c.bin_a, c.rows_csv)
    c.pred_b = fm.predict(c.bin_b, c.rows_csv)
    c.pred_multi = fm.predict(c.multi, c.rows_csv)
    c.pred_reg = fm.predict(c.reg, c.rows_csv)
    c.pred_flags = fm.predict(c.flags, c.flag_rows_csv)
    c.inspect_a = fm.inspect(c.bin_a)
    c.home = w.join("home")
    for name, path in (("credit", c.bin_a), ("marital", c.multi), ("amount", c.reg),
                       ("flags", c.flags), ("counted", c.bin_a)):
        assert fm.registry_add(c.home, name, path) == 1
    fm.registry_label(c.home, "credit", "staging", 1)
    return c


def infer_path(name, version=None):
    if version is None:
        return "/v2/models/%s/infer" % name
    return "/v2/models/%s/versions/%s/infer" % (name, version)


# ---- 1. endpoints --------------------------------------------------------------------------


def t_health(C, c, s):
    r = s.get("/v2/health/live")
    C.check(r.status == 200 and r.json() == {"live": True}, "GET /v2/health/live: 200 {live: true}",
            r)
    C.check(r.header("Content-Type").startswith("application/json"),
            "health answers are application/json", r.headers)
    r = s.get("/v2/health/ready")
    C.check(r.status == 200 and r.json() == {"ready": True},
            "GET /v2/health/ready: 200 {ready: true}", r)
    r = s.get("/v2")
    doc = r.json()
    version = fm.finmaas("--version").split()[-1]
    C.check(r.status == 200 and doc.get("name") == "finmaas" and doc.get("version") == version,
            "GET /v2: name finmaas, version %s" % version, doc)
    C.check(isinstance(doc.get("extensions"), list) and "model_repository" in doc["extensions"],
            "GET /v2: extensions list the model repository", doc)


def t_metadata(C, c, s):
    r = s.get("/v2/models/credit")
    C.equal(r.status, 200, "GET /v2/models/credit: 200")
    meta = r.json()
    c.columns = meta["inputs"]
    ins = c.inspect_a
    C.equal(meta.get("name"), "credit", "model metadata: name")
    C.equal(meta.get("versions"), ["1"], "model metadata: versions")
    C.check(isinstance(meta.get("platform"), str) and meta["platform"], "model metadata: platform",
            meta.get("platform"))
    want_inputs = [{"name": f["name"],
                    "datatype": "FP64" if f["type"] == "numeric" else "BYTES",
                    "shape": [-1]} for f in ins["features"]]
    C.equal(meta.get("inputs"), want_inputs, "model metadata: inputs (name, datatype, shape) "
            "as the model's features")
    C.equal(meta.get("outputs"), [{"name": "probability", "datatype": "FP32", "shape": [-1]},
                                  {"name": "label", "datatype": "BYTES", "shape": [-1]}],
            "model metadata: outputs of a binary model")
    p = meta.get("parameters", {})
    C.equal((p.get("task"), p.get("family"), p.get("target"), p.get("classes"),
             p.get("positive_class"), p.get("encoded_features")),
            ("binary", "mlp", "Status", ["good", "bad"], "bad",
             ins["encoded_features"]["count"]), "model metadata: parameters")
    r = s.get("/v2/models/credit/versions/1")
    C.check(r.status == 200 and r.json() == meta, "GET /v2/models/credit/versions/1: same "
            "metadata", r)
    m = s.get("/v2/models/marital").json()
    classes = fm.inspect(c.multi)["classes"]
    c.classes_multi = classes
    C.equal(m.get("outputs"), [{"name": "probability", "datatype": "FP32",
                                "shape": [-1, len(classes)]},
                               {"name": "label", "datatype": "BYTES", "shape": [-1]}],
            "multiclass metadata: probability shape [-1, K]")
    C.equal((m["parameters"].get("task"), m["parameters"].get("classes")),
            ("multiclass", classes), "multiclass metadata: task and classes")
    c.columns_multi = m["inputs"]
    g = s.get("/v2/models/amount").json()
    C.equal(g.get("outputs"), [{"name": "prediction", "datatype": "FP64", "shape": [-1]}],
            "regression metadata: one FP64 prediction output")
    C.equal(g["parameters"].get("task"), "regression", "regression metadata: task")
    c.columns_reg = g["inputs"]
    c.columns_flags = s.get("/v2/models/flags").json()["inputs"]


def t_ready(C, c, s):
    r = s.get("/v2/models/credit/ready")
    C.check(r.status == 200 and r.json() == {"name": "credit", "version": "1", "ready": True},
            "GET /v2/models/credit/ready", r)
    r = s.get("/v2/models/credit/versions/1/ready")
    C.check(r.status == 200 and r.json() == {"name": "credit", "version": "1", "ready": True},
            "GET /v2/models/credit/versions/1/ready", r)


def t_v2_binary(C, c, s):
    # 2. every row alone, on one keep-alive connection, then all rows in one request
    client = fm.Client(s)
    bodies = fm.single_row_bodies(c.columns, c.rows)
    bad = []
    for i, body in enumerate(bodies):
        r = client.post(infer_path("credit"), body)
        doc = r.json() if r.status == 200 else None
        why = ("status %d %r" % (r.status, r.body)) if doc is None else \
            fm.check_v2_binary(doc, [c.pred_a[i]], "bad")
        if not why and (doc.get("model_name"), doc.get("model_version")) != ("credit", "1"):
            why = "model %r" % ((doc.get("model_name"), doc.get("model_version")),)
        if why:
            bad.append("row %d: %s" % (i, why))
    client.close()
    C.check(not bad, "200 single-row V2 requests (FP64/INT64/BYTES, NA as null) agree with "
            "finmaas predict", bad[:3])
    body = {"inputs": fm.v2_inputs(c.columns, c.rows)}
    r = s.post(infer_path("credit"), body)
    c.multi_answer = r.json()
    C.check(r.status == 200 and fm.check_v2_binary(c.multi_answer, c.pred_a, "bad") is None,
            "one V2 request of 200 rows agrees with finmaas predict",
            r if r.status != 200 else fm.check_v2_binary(c.multi_answer, c.pred_a, "bad"))
    body = {"inputs": fm.v2_inputs(c.columns, c.rows, integer=True, nested=True)}
    r = s.post(infer_path("credit"), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a, "bad") is None,
            "nested data [[v], ...] with shape [N, 1] and INT64 columns", r)
    body = {"id": "req-42", "inputs": fm.v2_inputs(c.columns, c.rows[:3])}
    doc = s.post(infer_path("credit", 1), body).json()
    C.equal((doc.get("id"), doc.get("model_name"), doc.get("model_version")),
            ("req-42", "credit", "1"), "V2 answer echoes id, names model and version")
    body["outputs"] = [{"name": "label"}]
    doc = s.post(infer_path("credit"), body).json()
    C.check([o["name"] for o in doc.get("outputs", [])] == ["label"] and
            output(doc, "label")["data"] == [e["label"] for e in c.pred_a[:3]],
            "outputs [label] returns only the labels", doc)
    body["outputs"] = [{"name": "probability"}]
    doc = s.post(infer_path("credit"), body).json()
    C.check([o["name"] for o in doc.get("outputs", [])] == ["probability"] and
            all(fm.close_to(p, e["p_bad"]) for p, e in
                zip(output(doc, "probability")["data"], c.pred_a[:3])),
            "outputs [probability] returns only the probabilities", doc)
    extra = fm.v2_inputs(c.columns, c.rows[:3]) + [
        {"name": "Status", "datatype": "BYTES", "shape": [3], "data": ["good"] * 3},
        {"name": "comment", "datatype": "BYTES", "shape": [1], "data": ["x"]}]
    r = s.post(infer_path("credit"), {"inputs": extra})
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a[:3], "bad") is None,
            "tensors that are not model inputs are ignored (whole records may be sent)", r)


def output(doc, name):
    return fm.output(doc, name) or {"data": []}


def t_encoded(C, c, s):
    prep = c.inspect_a["preprocessing"]
    meta = s.get("/v2/models/credit").json()
    F = meta["parameters"]["encoded_features"]
    X = [fm.encode_row(prep, r) for r in c.rows]
    C.equal(len(X[0]), F, "encoding computed from inspect has encoded_features columns")
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [len(X), F], "data": X}]}
    r = s.post(infer_path("credit"), body)
    doc = r.json()
    raw_p = output(c.multi_answer, "probability")["data"]
    enc_p = output(doc, "probability")["data"]
    C.check(r.status == 200 and len(enc_p) == len(raw_p) and
            all(fm.close_to(a, b) for a, b in zip(enc_p, raw_p)) and
            output(doc, "label")["data"] == output(c.multi_answer, "label")["data"],
            "pre-encoded 'input' FP32 [N, F] equals the raw-feature request", r)
    C.check(fm.check_v2_binary(doc, c.pred_a, "bad") is None,
            "pre-encoded 'input' agrees with finmaas predict", fm.check_v2_binary(doc, c.pred_a,
                                                                                  "bad"))
    flat = [v for row in X[:5] for v in row]
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [5, F], "data": flat}]}
    r = s.post(infer_path("credit"), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a[:5], "bad") is None,
            "pre-encoded 'input' as flat row-major data", r)
    r = s.post("/v1/models/credit:predict", {"instances": X[:5]})
    preds = r.json().get("predictions", []) if r.status == 200 else []
    C.check(len(preds) == 5 and all(fm.close_to(p["probability"], e["p_bad"]) and
                                    p["label"] == e["label"] for p, e in zip(preds, c.pred_a)),
            "TF predict with encoded instances agrees", r)
    # an unseen category adds nothing: all zeros in its one-hot block
    row = dict(c.rows[0], Home="spaceship")
    one = {"inputs": fm.v2_inputs(c.columns, [row])}
    enc = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, F],
                       "data": [fm.encode_row(prep, row)]}]}
    a, b = s.post(infer_path("credit"), one), s.post(infer_path("credit"), enc)
    C.check(a.status == 200 and b.status == 200 and
            fm.close_to(output(a.json(), "probability")["data"][0],
                        output(b.json(), "probability")["data"][0]),
            "an unseen category scores as an all-zero one-hot block", (a, b))


def t_multiclass(C, c, s):
    K = len(c.classes_multi)
    r = s.post(infer_path("marital"), {"inputs": fm.v2_inputs(c.columns_multi, c.rows)})
    doc = r.json()
    p = fm.output(doc, "probability") or {}
    lab = fm.output(doc, "label") or {}
    C.check(r.status == 200 and p.get("shape") == [len(c.rows), K] and p.get("datatype") == "FP32"
            and len(p.get("data", [])) == len(c.rows) * K,
            "multiclass probability: FP32 shape [N, K]", {k: p.get(k) for k in ("shape",
                                                                              "datatype")})
    data = p.get("data", [])
    sums = [sum(data[i * K:(i + 1) * K]) for i in range(len(c.rows))]
    C.check(sums and all(abs(x - 1) < 1e-5 for x in sums), "multiclass rows sum to 1",
            [x for x in sums if abs(x - 1) >= 1e-5][:3])
    worst, labels_ok = 0.0, True
    for i, e in enumerate(c.pred_multi):
        for k, cls in enumerate(c.classes_multi):
            worst = max(worst, abs(data[i * K + k] - e["p_" + cls]))
        labels_ok = labels_ok and lab.get("data", [None] * len(c.rows))[i] == e["label"]
    C.check(worst <= fm.PROB_TOL and labels_ok, "multiclass probabilities and labels agree with "
            "finmaas predict (largest difference %.2g)" % worst, labels_ok)
    r = s.post("/v1/models/marital:predict",
               {"instances": [fm.tf_instance(c.columns_multi, x) for x in c.rows[:20]]})
    preds = r.json().get("predictions", [])
    ok = r.status == 200 and len(preds) == 20
    for pr, e in zip(preds, c.pred_multi):
        ok = ok and len(pr["probability"]) == K and pr["label"] == e["label"] and all(
            fm.close_to(pr["probability"][k], e["p_" + cls])
            for k, cls in enumerate(c.classes_multi))
    C.check(ok, "multiclass TF predict: a list of K probabilities per row", r)


def t_regression(C, c, s):
    r = s.post(infer_path("amount"), {"inputs": fm.v2_inputs(c.columns_reg, c.rows)})
    doc = r.json()
    p = fm.output(doc, "prediction") or {}
    C.check(r.status == 200 and p.get("datatype") == "FP64" and p.get("shape") == [len(c.rows)]
            and [o["name"] for o in doc["outputs"]] == ["prediction"],
            "regression: one FP64 [N] prediction output", doc)
    # The CLI prints 10 significant digits; compare relative to the value.
    diffs = [abs(a - e["prediction"]) / max(1.0, abs(e["prediction"]))
             for a, e in zip(p.get("data", []), c.pred_reg)]
    C.check(len(diffs) == len(c.rows) and max(diffs) <= 1e-6,
            "regression predictions agree with finmaas predict (largest relative difference "
            "%.2g)" % (max(diffs) if diffs else -1), diffs[:3])
    r = s.post("/v1/models/amount:predict",
               {"instances": [fm.tf_instance(c.columns_reg, x) for x in c.rows[:10]]})
    preds = r.json().get("predictions", [])
    C.check(r.status == 200 and len(preds) == 10 and
            all(abs(a - b) <= 1e-6 * max(1, abs(b)) for a, b in zip(preds, p["data"])),
            "regression TF predict: a list of numbers", r)
    cols = {col["name"]: [fm.tf_instance(c.columns_reg, x)[col["name"]] for x in c.rows[:10]]
            for col in c.columns_reg}
    r = s.post("/v1/models/amount:predict", {"inputs": cols})
    outs = r.json().get("outputs", [])
    C.check(r.status == 200 and len(outs) == 10 and
            all(abs(a - b) <= 1e-6 * max(1, abs(b)) for a, b in zip(outs, p["data"])),
            "regression TF predict, columnar: outputs is a list of numbers", r)


def t_bool(C, c, s):
    meta = {col["name"]: col["datatype"] for col in c.columns_flags}
    C.equal(meta, {"x": "FP64", "flag": "FP64", "grp": "BYTES"}, "synthetic model inputs")
    rows = c.flag_rows
    n = len(rows)
    body = {"inputs": [
        {"name": "x", "datatype": "FP64", "shape": [n], "data": [float(r["x"]) for r in rows]},
        {"name": "flag", "datatype": "BOOL", "shape": [n],
         "data": [r["flag"] == "1" for r in rows]},
        {"name": "grp", "datatype": "BYTES", "shape": [n], "data": [r["grp"] for r in rows]},
    ]}
    r = s.post(infer_path("flags"), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_flags, "yes") is None,
            "BOOL tensor for a 0/1 column agrees with finmaas predict",
            r if r.status != 200 else fm.check_v2_binary(r.json(), c.pred_flags, "yes"))
    body["inputs"][1] = {"name": "flag", "datatype": "INT64", "shape": [n],
                         "data": [int(r["flag"]) for r in rows]}
    body["inputs"][0]["datatype"] = "FP32"
    r = s.post(infer_path("flags"), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_flags, "yes") is None,
            "FP32 and INT64 tensors give the same answers", r)


def t_tf(C, c, s):
    inst = [fm.tf_instance(c.columns, r) for r in c.rows]

    def agree(preds, expected):
        return len(preds) == len(expected) and all(
            fm.close_to(p.get("probability"), e["p_bad"]) and p.get("label") == e["label"]
            for p, e in zip(preds, expected))

    r = s.post("/v1/models/credit:predict", {"instances": inst})
    C.check(r.status == 200 and agree(r.json().get("predictions", []), c.pred_a),
            "TF predict, row format (instances), 200 rows agree with finmaas predict", r)
    cols = {col["name"]: [x[col["name"]] for x in inst] for col in c.columns}
    r = s.post("/v1/models/credit:predict", {"inputs": cols})
    out = r.json().get("outputs", {}) if r.status == 200 else {}
    preds = [{"probability": p, "label": l} for p, l in zip(out.get("probability", []),
                                                         out.get("label", []))]
    C.check(r.status == 200 and agree(preds, c.pred_a),
            "TF predict, columnar (inputs), 200 rows agree with finmaas predict", r)
    one = {col["name"]: inst[0][col["name"]] for col in c.columns}
    r = s.post("/v1/models/credit:predict", {"inputs": one})
    out = r.json().get("outputs", {}) if r.status == 200 else {}
    C.check(r.status == 200 and len(out.get("probability", [])) == 1 and
            fm.close_to(out["probability"][0], c.pred_a[0]["p_bad"]),
            "TF predict, columnar with scalar values: one row", r)
    r = s.post("/v1/models/credit/versions/1:predict", {"instances": inst[:10]})
    C.check(r.status == 200 and agree(r.json().get("predictions", []), c.pred_a[:10]),
            "TF predict /versions/1", r)
    r = s.post("/v1/models/credit/labels/staging:predict", {"instances": inst[:10]})
    C.check(r.status == 200 and agree(r.json().get("predictions", []), c.pred_a[:10]),
            "TF predict /labels/staging", r)
    want = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}
    r = s.get("/v1/models/credit")
    C.check(r.status == 200 and r.json() == want, "GET /v1/models/credit: version status", r)
    r = s.get("/v1/models/credit/versions/1")
    C.check(r.status == 200 and r.json() == want, "GET /v1/models/credit/versions/1", r)


def index_of(doc):
    return {(e["name"], e["version"]): e for e in doc}


def t_repository(C, c, s):
    for method in ("GET", "POST"):
        r = s.request(method, "/v2/repository/index")
        idx = index_of(r.json()) if r.status == 200 else {}
        C.check(r.status == 200 and set(idx) == {("credit", "1"), ("marital", "1"),
                                                 ("amount", "1"), ("flags", "1"),
                                                 ("counted", "1")} and
                all(e["state"] == "READY" for e in idx.values()) and
                idx[("credit", "1")]["labels"] == ["staging"],
                "%s /v2/repository/index lists every version READY, with labels" % method, r)
    r = s.post("/v2/repository/models/credit/unload")
    C.check(r.status == 200 and r.json() == {}, "unload: 200 {}", r)
    idx = index_of(s.get("/v2/repository/index").json())
    C.equal(idx[("credit", "1")]["state"], "UNAVAILABLE", "index shows the unloaded model")
    one = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    r = s.post(infer_path("credit"), one)
    C.check(r.status == 503 and r.header("Retry-After") and error_body(r),
            "infer on an unloaded model: 503 with Retry-After", (r, r.headers))
    r = s.post("/v1/models/credit:predict", {"instances": [fm.tf_instance(c.columns, c.rows[0])]})
    C.check(r.status == 503 and r.header("Retry-After") and error_body(r),
            "TF predict on an unloaded model: 503 with Retry-After", r)
    r = s.post("/v2/repository/models/credit/load")
    C.check(r.status == 200 and r.json() == {}, "load: 200 {}", r)
    r = s.post(infer_path("credit"), one)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a[:1], "bad") is None,
            "after load the model answers again", r)

    # upload a new version: servable at once and the default (newest)
    data = open(c.bin_b, "rb").read()
    r = s.post("/v2/repository/models/credit/versions", data,
               headers={"Content-Type": "application/octet-stream"})
    C.check(r.status == 201 and r.json() == {"name": "credit", "version": 2},
            "upload: 201 {name, version: 2}", r)
    body = {"inputs": fm.v2_inputs(c.columns, c.rows)}
    r = s.post(infer_path("credit"), body)
    doc = r.json()
    C.check(r.status == 200 and doc.get("model_version") == "2" and
            fm.check_v2_binary(doc, c.pred_b, "bad") is None,
            "the uploaded version is served at once as the default", r)
    r = s.post(infer_path("credit", 1), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a, "bad") is None,
            "version 1 is still served on /versions/1", r)
    r = s.post(infer_path("credit", 2), body)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_b, "bad") is None,
            "version 2 on /versions/2 agrees with finmaas predict on the uploaded file", r)
    C.equal(s.get("/v2/models/credit").json().get("versions"), ["1", "2"],
            "metadata without version lists both versions")
    listed = {(e["name"], e["version"]): e for e in fm.registry_list(c.home)}
    C.equal(listed.get(("credit", 2), {}).get("sha256"), hashlib.sha256(data).hexdigest(),
            "the registry holds the uploaded bytes (sha256)")
    r = s.request("PUT", "/api/models/credit/labels/production", {"version": 1})
    C.check(r.status == 200 and r.json() == {"model": "credit", "label": "production",
                                             "version": 1},
            "PUT /api/models/credit/labels/production {version: 1}: 200", r)
    r = s.post(infer_path("credit"), body)
    C.check(r.status == 200 and r.json().get("model_version") == "1" and
            fm.check_v2_binary(r.json(), c.pred_a, "bad") is None,
            "the production label makes version 1 the default again", r)
    r = s.post("/v1/models/credit:predict", {"instances": [fm.tf_instance(c.columns,
                                                                          c.rows[0])]})
    C.check(r.status == 200 and fm.close_to(r.json()["predictions"][0]["probability"],
                                            c.pred_a[0]["p_bad"]),
            "TF predict without version follows the production label", r)
    r = s.post("/v1/models/credit/labels/production:predict",
               {"instances": [fm.tf_instance(c.columns, c.rows[0])]})
    C.check(r.status == 200 and fm.close_to(r.json()["predictions"][0]["probability"],
                                            c.pred_a[0]["p_bad"]),
            "TF predict /labels/production", r)
    labels = {e["version"]: e["labels"] for e in fm.registry_list(c.home)
              if e["name"] == "credit"}
    C.check("production" in labels.get(1, []), "the label is stored in the registry", labels)
    r = s.request("DELETE", "/api/models/credit/labels/production")
    C.check(r.status == 200, "DELETE /api/models/credit/labels/production: 200", r)
    r = s.post(infer_path("credit"), one)
    C.equal(r.json().get("model_version"), "2", "without the label the newest is the default")
    r = s.request("PUT", "/api/models/credit/labels/production", {"version": 1})
    C.equal(r.status, 200, "PUT the production label back on version 1")
    want = {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "1")]}
    C.equal(s.get("/v1/models/credit").json(), want, "GET /v1/models/credit lists both versions")

    r = s.get("/api/models")
    got = r.json()
    cli = fm.registry_list(c.home)
    keys = ("name", "version", "task", "family", "size", "sha256", "created", "labels")
    C.check(r.status == 200 and [{k: e.get(k) for k in keys} for e in got] ==
            [{k: e.get(k) for k in keys} for e in cli],
            "GET /api/models equals `finmaas models list --json`", (got, cli))


# ---- 3. errors -----------------------------------------------------------------------------


def error_body(r):
    try:
        doc = r.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and list(doc) == ["error"] and isinstance(doc["error"], str) \
        and doc["error"] != ""


class Errors:
    def __init__(self, C, c, s):
        self.C, self.c, self.s = C, c, s
        self.valid = json.dumps({"inputs": fm.v2_inputs(c.columns, c.rows[:1])}).encode()

    def still_serving(self, what):
        r = self.s.post(infer_path("credit", 1), self.valid, headers=JSON)
        self.C.check(r.status == 200 and fm.check_v2_binary(r.json(), self.c.pred_a[:1], "bad")
                     is None, "  then a valid request is answered correctly (%s)" % what, r)

    def expect(self, what, status, r, names=None, allow=None, retry=False):
        ok = r.status == status and error_body(r) and bool(r.header("X-Request-Id"))
        detail = "got %d %r" % (r.status, r.body[:300])
        if ok and names:
            msg = r.json()["error"]
            ok = all(n in msg for n in names)
            detail = "message %r does not name %r" % (msg, names)
        if ok and allow is not None:
            ok = r.header("Allow") == allow
            detail = "Allow: %r, want %r" % (r.header("Allow"), allow)
        if ok and retry:
            ok = bool(r.header("Retry-After"))
            detail = "no Retry-After"
        self.C.check(ok, "%d %s" % (status, what), detail)
        self.still_serving(what)

    def post(self, path, body, headers=None, key=fm.DEFAULT_KEY):
        h = dict(JSON)
        h.update(headers or {})
        return self.s.post(path, body if isinstance(body, (bytes, str)) else json.dumps(body),
                           headers=h, key=key)

    def unauthenticated(self, what, r):
        """401 with an error body and WWW-Authenticate: Bearer."""
        self.expect(what, 401, r)
        self.C.check(r.header("WWW-Authenticate") == "Bearer",
                     "  with WWW-Authenticate: Bearer (%s)" % what, r.headers)


def credit_labels(home):
    return {e["version"]: sorted(e["labels"]) for e in fm.registry_list(home)
            if e["name"] == "credit"}


def t_errors(C, c, s):
    e = Errors(C, c, s)
    P = infer_path("credit")
    cols = c.columns
    one = fm.v2_inputs(cols, c.rows[:1])
    good = json.dumps({"inputs": one})
    model_bytes = open(c.bin_a, "rb").read()
    OCTET = {"Content-Type": "application/octet-stream"}
    # 401: a request to an endpoint that needs a key is refused for its key before anything else
    # it could be refused for (body, content type, model, version)
    e.unauthenticated("no key (infer)", e.post(P, good, key=None))
    e.unauthenticated("no key, a body that is not JSON", e.post(P, "hello", key=None))
    e.unauthenticated("no key, an unknown model", e.post(infer_path("nosuch"), good, key=None))
    e.unauthenticated("no key, text/plain", e.post(P, good, {"Content-Type": "text/plain"},
                                                   key=None))
    e.unauthenticated("no key (metadata)", s.get("/v2/models/credit", key=None))
    e.unauthenticated("no key (upload)", s.post("/v2/repository/models/credit/versions",
                                                model_bytes, headers=OCTET, key=None))
    e.unauthenticated("a well-formed token that is no key", e.post(P, good, key="fmk_" + "A" * 43))
    e.unauthenticated("an Authorization header that is not Bearer",
                      e.post(P, good, {"Authorization": "Basic dXNlcjpwYXNz"}))
    e.unauthenticated("Bearer with nothing after it", e.post(P, good, {"Authorization": "Bearer "}))
    # 403: a key whose role the route does not allow
    labels_before = credit_labels(c.home)
    e.expect("a consumer uploading a model", 403,
             s.post("/v2/repository/models/credit/versions", model_bytes, headers=OCTET,
                    key=s.keys["consumer"]), ["consumer"])
    e.expect("a consumer unloading a model", 403,
             s.post("/v2/repository/models/credit/unload", key=s.keys["consumer"]))
    e.expect("an auditor predicting", 403, e.post(P, good, key=s.keys["auditor"]))
    e.expect("a consumer reading /metrics", 403, s.get("/metrics", key=s.keys["consumer"]))
    e.expect("a modeler moving the production label", 403,
             s.request("PUT", "/api/models/credit/labels/production", {"version": 1},
                       key=s.keys["modeler"]), ["production"])
    e.expect("a validator moving another label", 403,
             s.request("PUT", "/api/models/credit/labels/staging", {"version": 1},
                       key=s.keys["validator"]), ["staging"])
    C.check(s.get("/v2/models/credit/ready").status == 200 and
            credit_labels(c.home) == labels_before,
            "  the refused requests changed nothing (credit loaded, labels as before)",
            (labels_before, credit_labels(c.home)))
    # 400
    e.expect("truncated JSON", 400, e.post(P, good[: len(good) // 2]))
    e.expect("trailing garbage after the JSON object", 400, e.post(P, good + " xyz"))
    e.expect("JSON that is not an object", 400, e.post(P, "[1, 2, 3]"))
    e.expect("'inputs' missing", 400, e.post(P, {"id": "x"}))
    e.expect("'inputs' empty", 400, e.post(P, {"inputs": []}))
    e.expect("not JSON at all", 400, e.post(P, "hello"))
    e.expect("TF predict without instances or inputs", 400,
             e.post("/v1/models/credit:predict", {"rows": []}))
    e.expect("label PUT with a body that is not JSON", 400,
             s.request("PUT", "/api/models/credit/labels/x", "{version", headers=JSON))
    e.expect("label PUT without a version", 400,
             s.request("PUT", "/api/models/credit/labels/x", {"v": 1}))
    # 404
    e.expect("unknown model (infer)", 404, e.post(infer_path("nosuch"), good), ["nosuch"])
    e.expect("unknown model (metadata)", 404, s.get("/v2/models/nosuch"), ["nosuch"])
    e.expect("unknown model (TF status)", 404, s.get("/v1/models/nosuch"))
    e.expect("unknown version", 404, e.post(infer_path("credit", 99), good), ["99"])
    e.expect("version that is not a number", 404, e.post(infer_path("credit", "abc"), good))
    e.expect("unknown version (TF status)", 404, s.get("/v1/models/credit/versions/99"))
    e.expect("unknown path", 404, s.get("/v3/nothing/here"))
    e.expect("unknown path under /v2", 404, s.get("/v2/models/credit/infer/more"))
    e.expect("unknown label", 404, e.post("/v1/models/credit/labels/nolabel:predict",
                                          {"instances": [fm.tf_instance(cols, c.rows[0])]}),
             ["nolabel"])
    e.expect("load of an unknown model", 404, s.post("/v2/repository/models/nosuch/load"))
    e.expect("unload of an unknown model", 404, s.post("/v2/repository/models/nosuch/unload"))
    e.expect("label on an unknown version", 404,
             s.request("PUT", "/api/models/credit/labels/x", {"version": 99}))
    # 405
    e.expect("GET on the infer path", 405, s.get(P), allow="POST")
    e.expect("DELETE on /v2/health/live", 405, s.request("DELETE", "/v2/health/live"),
             allow="GET")
    e.expect("PUT on /metrics", 405, s.request("PUT", "/metrics", b"x"), allow="GET")
    e.expect("POST on /api/models", 405, s.post("/api/models", b"{}", headers=JSON), allow="GET")
    e.expect("GET on a label", 405, s.get("/api/models/credit/labels/production"),
             allow="PUT, DELETE")
    # 411
    e.expect("POST with an empty body", 411, s.post(P, b"", headers=JSON))
    raw = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Connection: close\r\n" % P).encode() + s.auth_line("POST", P) + b"\r\n"
    r = s.raw(raw)
    s.note(r, "POST", P)
    e.expect("POST without Content-Length", 411, r)
    # 415
    e.expect("text/plain on infer", 415, s.post(P, good, headers={"Content-Type": "text/plain"}))
    e.expect("JSON content type on an upload", 415,
             s.post("/v2/repository/models/credit/versions", open(c.bin_a, "rb").read(),
                    headers=JSON))
    # 422
    bad = [dict(t) for t in one]
    bad[0] = dict(bad[0], shape=[1, 3])
    e.expect("wrong shape [1, 3] for a named input", 422, e.post(P, {"inputs": bad}),
             [cols[0]["name"]])
    bad = [dict(t) for t in one]
    bad[0] = dict(bad[0], shape=[2])
    e.expect("shape [2] with one value", 422, e.post(P, {"inputs": bad}))
    num = next(t for t in one if t["datatype"] != "BYTES" and t["data"][0] is not None)
    cat = next(t for t in one if t["datatype"] == "BYTES" and t["data"][0] is not None)
    bad = [dict(t, data=["12"]) if t is num else t for t in one]
    e.expect("a string under FP64", 422, e.post(P, {"inputs": bad}), [num["name"]])
    bad = [dict(t, data=[3]) if t is cat else t for t in one]
    e.expect("a number under BYTES", 422, e.post(P, {"inputs": bad}), [cat["name"]])
    bad = [dict(t, datatype="FP99") if t is num else t for t in one]
    e.expect("an unknown datatype", 422, e.post(P, {"inputs": bad}), ["FP99"])
    bad = [t for t in one if t["name"] != "Income"]
    e.expect("a missing feature (the message names it)", 422, e.post(P, {"inputs": bad}),
             ["Income"])
    two = fm.v2_inputs(cols, c.rows[:2])
    bad = [two[0]] + one[1:]
    e.expect("mismatched row counts", 422, e.post(P, {"inputs": bad}))
    bad = [dict(t, datatype="BYTES", data=["abc"]) if t is num else t for t in one]
    e.expect("non-numeric text for a numeric feature", 422, e.post(P, {"inputs": bad}),
             [num["name"], "abc"])
    F = c.inspect_a["encoded_features"]["count"]
    e.expect("encoded input with the wrong width", 422, e.post(P, {"inputs": [
        {"name": "input", "datatype": "FP32", "shape": [1, F - 1], "data": [[0.0] * (F - 1)]}]}),
        [str(F)])
    e.expect("an output the model does not have", 422,
             e.post(P, {"inputs": one, "outputs": [{"name": "prediction"}]}), ["outputs[0]"])
    e.expect("TF instance of encoded features with the wrong length", 422,
             e.post("/v1/models/credit:predict", {"instances": [[0.0, 1.0]]}))
    e.expect("TF instance missing a feature", 422,
             e.post("/v1/models/credit:predict",
                    {"instances": [{k: v for k, v in fm.tf_instance(cols, c.rows[0]).items()
                                    if k != "Age"}]}), ["Age"])
    before = fm.registry_list(c.home)
    before_api = s.get("/api/models").json()
    e.expect("upload of a file that is not a model", 422,
             s.post("/v2/repository/models/credit/versions", b"this is not a model file\n" * 40,
                    headers={"Content-Type": "application/octet-stream"}))
    e.expect("upload of a truncated model file", 422,
             s.post("/v2/repository/models/credit/versions", open(c.bin_a, "rb").read()[:500],
                    headers={"Content-Type": "application/octet-stream"}))
    C.check(fm.registry_list(c.home) == before and s.get("/api/models").json() == before_api,
            "  nothing was added to the registry by the bad uploads")
    C.check(not [n for n in os.listdir(os.path.join(c.home, "models", "credit"))
                 if n not in ("1.fmm", "2.fmm")],
            "  no stray file in the model's directory",
            os.listdir(os.path.join(c.home, "models", "credit")))
    # 503
    s.post("/v2/repository/models/flags/unload")
    e.expect("model not loaded", 503, e.post(infer_path("flags"), {"inputs": []}), retry=True)
    e.expect("model not loaded (metadata)", 503, s.get("/v2/models/flags"), retry=True)
    s.post("/v2/repository/models/flags/load")
    r = s.get("/v2/models/flags/ready")
    C.check(r.status == 200, "flags model loaded again", r)


def t_mutated(C, c, s):
    """Valid bodies mangled at random (truncated, bytes changed, inserted, deleted, duplicated):
    each is answered 200, 400 or 422 (an error as JSON), never 5xx, and the server keeps
    serving."""
    rng = fm.random.Random(11)
    v2 = json.dumps({"id": "m", "inputs": fm.v2_inputs(c.columns, c.rows[:3], integer=True),
                     "outputs": [{"name": "label"}]}).encode()
    tf = json.dumps({"instances": [fm.tf_instance(c.columns, r) for r in c.rows[:3]]}).encode()
    cols = json.dumps({"inputs": {col["name"]: [fm.tf_instance(c.columns, r)[col["name"]]
                                                for r in c.rows[:3]] for col in c.columns}})
    specials = b'{}[]",:0123456789.eE+-\\ntrufalsn \x00\xff\xc3'
    bad, statuses = [], {}
    count = fm.scaled(600, 100)
    for k in range(count):
        path, body = [(infer_path("credit", 1), v2), ("/v1/models/credit:predict", tf),
                      ("/v1/models/credit:predict", cols.encode())][k % 3]
        b = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op, at = rng.randrange(5), rng.randrange(len(b))
            if op == 0:
                del b[at:]
            elif op == 1:
                b[at] = rng.choice(specials)
            elif op == 2:
                b[at:at] = bytes([rng.choice(specials)])
            elif op == 3:
                del b[at:at + rng.randint(1, 20)]
            else:
                b[at:at] = b[at:at + rng.randint(1, 40)]
            if not b:
                b = bytearray(b"{")
        r = s.post(path, bytes(b), headers=JSON)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.status not in (200, 400, 422) or (r.status != 200 and not error_body(r)):
            bad.append((path, bytes(b)[:300], r.status, r.body[:200]))
    C.check(not bad, "%d mangled bodies: each answered 200, 400 or 422 with a JSON error %r"
            % (count, statuses), bad[:3])
    e = Errors(C, c, s)
    e.still_serving("after the mangled bodies")


def t_large(C, c, s):
    rows = c.rows * 25
    r = s.post(infer_path("credit", 1), {"inputs": fm.v2_inputs(c.columns, rows)})
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a * 25, "bad") is None,
            "one V2 request of %d rows agrees with finmaas predict" % len(rows), r)
    r = s.post("/v1/models/credit:predict",
               {"instances": [fm.tf_instance(c.columns, x) for x in rows]})
    preds = r.json().get("predictions", []) if r.status == 200 else []
    C.check(len(preds) == len(rows) and all(fm.close_to(p["probability"], e["p_bad"]) for p, e in
                                            zip(preds, c.pred_a * 25)),
            "one TF request of %d rows agrees with finmaas predict" % len(rows), r)


def t_claimed_rows(C, c, w):
    """A tiny request whose shape claims 100 million rows is a client error (422), answered at
    once without allocating for the rows it claims: the server runs with 4 GB of address space,
    where 100 million rows of features cannot be allocated."""
    if fm.SANITIZED:
        print("# skipped under the sanitizer build (it cannot run with a memory limit)")
        return
    s = fm.Server(c.home, w.path, name="capped", max_memory=4 << 30).start()
    try:
        e = Errors(C, c, s)
        one = fm.v2_inputs(c.columns, c.rows[:1])
        P = infer_path("credit", 1)
        claims = [dict(t, shape=[100000000]) for t in one]
        t0 = time.monotonic()
        r = e.post(P, {"inputs": claims})
        e.expect("shape [100000000] with one value per input (%.2f s)" % (time.monotonic() - t0),
                 422, r)
        F = c.inspect_a["encoded_features"]["count"]
        r = e.post(P, {"inputs": [{"name": "input", "datatype": "FP64", "shape": [100000000, F],
                                   "data": [0.5] * F}]})
        e.expect("encoded input of shape [100000000, F] with one row of values", 422, r)
    finally:
        rc, took = s.stop()
    C.check(rc == 0, "memory-capped server exits 0", rc)


def t_body_limit(C, c, w):
    s = fm.Server(c.home, w.path, name="limit", args=["--max-body-bytes", "4096"]).start()
    try:
        e = Errors(C, c, s)
        P = infer_path("credit", 1)
        big = json.dumps({"inputs": fm.v2_inputs(c.columns, c.rows[:100])})
        assert len(big) > 4096
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n" % (P, len(big))).encode() + \
            s.auth_line("POST", P) + b"\r\n"
        r = s.raw(head)
        s.note(r, "POST", P)
        e.expect("Content-Length over --max-body-bytes (refused on the headers)", 413, r)
        r = s.post(P, big, headers=JSON)
        e.expect("body over --max-body-bytes sent whole", 413, r)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 1000]), big[i:i + 1000].encode())
                          for i in range(0, len(big), 1000)) + b"0\r\n\r\n"
        raw = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n" % P).encode() + \
            s.auth_line("POST", P) + b"\r\n" + chunks
        r = s.raw(raw)
        s.note(r, "POST", P)
        e.expect("chunked body over --max-body-bytes", 413, r)
        small = json.dumps({"inputs": fm.v2_inputs(c.columns, c.rows[:3])})
        r = s.post(P, small, headers=JSON)
        C.check(len(small) < 4096 and r.status == 200 and
                fm.check_v2_binary(r.json(), c.pred_a[:3], "bad") is None,
                "a body under the limit is served", r)
    finally:
        rc, took = s.stop()
    C.check(rc == 0, "server with --max-body-bytes exits 0 on SIGTERM", rc)
    C.check(not s.sanitizer_report(), "no sanitizer report (body-limit server)", s.stderr())


# ---- API keys and the audit log over HTTP --------------------------------------------------


def t_keys_audit(C, c, s):
    r = s.get("/api/keys")
    keys = r.json() if r.status == 200 else []
    names = {k.get("name"): k for k in keys}
    C.check(r.status == 200 and all("test-" + role in names for role in fm.ROLES),
            "GET /api/keys (admin): 200, lists the keys made with finmaas keys create", r)
    C.check(all(names["test-" + role].get("role") == role for role in fm.ROLES if
                "test-" + role in names), "  each with its role", keys)
    C.check(not any(t in r.body.decode() for t in s.keys.values()) and
            not any("token" in k or "hash" in k for k in keys),
            "  and no token or hash", keys[:1])
    r = s.post("/api/keys", {"role": "consumer", "models": ["credit"], "name": "scoped"})
    doc = r.json() if r.status == 201 else {}
    token = doc.get("token", "")
    C.check(r.status == 201 and re.match(r"^fmk_[A-Za-z0-9_-]{43}$", token) and
            doc.get("role") == "consumer" and doc.get("models") == ["credit"] and
            doc.get("name") == "scoped" and re.match(r"^k_[0-9a-f]{12}$", doc.get("id", "")),
            "POST /api/keys {role: consumer, models: [credit]}: 201 with the token, once", r)
    one = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    r = s.post(infer_path("credit"), one, key=token)
    C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred_a[:1], "bad") is None,
            "  the new key predicts with credit at once", r)
    r = s.post(infer_path("marital"), {"inputs": fm.v2_inputs(c.columns_multi, c.rows[:1])},
               key=token)
    C.check(r.status == 403 and error_body(r), "  and is refused (403) for a model outside its "
            "scope", r)
    r = s.get("/v2/repository/index", key=token)
    C.check(r.status == 200 and {e["name"] for e in r.json()} == {"credit"},
            "  the repository index shows it only its models", r)
    r = s.request("DELETE", "/api/keys/no-such-key")
    home = os.path.abspath(c.home)
    C.check(r.status == 404 and error_body(r) and home not in r.body.decode() and
            "/keys.db" not in r.body.decode(),
            "DELETE /api/keys/no-such-key: 404, the message does not show the home directory", r)
    r = s.request("DELETE", "/api/keys/scoped")
    C.check(r.status == 200 and r.json() == {"revoked": "scoped"},
            "DELETE /api/keys/scoped: 200 {revoked: scoped}", r)
    r = s.post(infer_path("credit"), one, key=token)
    C.check(r.status == 401 and error_body(r), "  the revoked key is refused (401) at once", r)
    r = s.get("/api/audit?limit=100000")
    entries = r.json() if r.status == 200 else []
    C.check(r.status == 200 and isinstance(entries, list) and entries and
            all(isinstance(e.get("seq"), int) and e.get("hash") for e in entries),
            "GET /api/audit (auditor): 200, the entries with seq and hash", r)
    actions = [e.get("action") for e in entries]
    C.check(all(a in actions for a in ("keys.create", "keys.revoke", "v2.infer", "model.upload",
                                      "label.set", "model.unload", "model.load")),
            "  the entries name the actions taken above", sorted(set(actions)))
    C.check(token not in r.body.decode(), "  the audit log does not hold the created token")
    made = [e for e in entries if e.get("action") == "keys.create" and e.get("status") == 201]
    trail = json.loads(made[-1]["output"]) if made and made[-1].get("output") else {}
    C.check(trail == {"created": doc.get("id"), "role": "consumer", "scope": "credit"},
            "  keys.create records the new key's id, role and scope", made[-1:] or entries[-3:])
    r = s.get("/api/audit?model=marital")
    C.check(r.status == 200 and r.json() and all(e.get("model") == "marital" for e in r.json()),
            "GET /api/audit?model=marital: only that model's entries", r)
    r = s.get("/api/audit", key=s.keys["admin"])
    C.check(r.status == 403 and error_body(r), "GET /api/audit with an admin key: 403", r)


# ---- request ids, metrics, access log ------------------------------------------------------


def t_request_ids(C, c, s):
    r = s.get("/v2/health/live", headers={"X-Request-Id": "rid-get-1"})
    C.equal(r.header("X-Request-Id"), "rid-get-1", "a client X-Request-Id is echoed (GET)")
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    r = s.post(infer_path("credit", 1), body, headers={"X-Request-Id": "rid-post-2"})
    C.equal(r.header("X-Request-Id"), "rid-post-2", "a client X-Request-Id is echoed (infer)")
    r = s.get("/v2/models/nosuch", headers={"X-Request-Id": "rid-err-3"})
    C.equal((r.status, r.header("X-Request-Id")), (404, "rid-err-3"),
            "a client X-Request-Id is echoed on an error")
    t0 = time.monotonic()
    s.get("/v2/health/ready", headers={"X-Request-Id": "rid-flush-4"})

    def logged():
        try:
            with open(s.access_log) as f:
                return "rid-flush-4" in f.read()
        except OSError:
            return False

    found, took = fm.wait_until(logged, 3.0, 0.02)
    took = time.monotonic() - t0
    C.check(found and took < 1.0, "the access log has the entry %.0f ms after the request "
            "(flushed every 200 ms)" % (took * 1000), took)
    ids = [x[0] for x in s.seen]
    C.check(all(ids), "every response carries X-Request-Id",
            [x for x in s.seen if not x[0]][:3])
    generated = [i for i in ids if i and not i.startswith("rid-")]
    C.check(len(set(generated)) == len(generated), "generated request ids are unique",
            len(generated) - len(set(generated)))


def t_metrics(C, c, s):
    P = infer_path("counted")
    singles, multis, fails = 5, 3, 2
    for i in range(singles):
        r = s.post(P, {"inputs": fm.v2_inputs(c.columns, [c.rows[i]])})
        assert r.status == 200, r
    for i in range(multis):
        r = s.post(P, {"inputs": fm.v2_inputs(c.columns, c.rows[i:i + 4])})
        assert r.status == 200, r
    for i in range(fails):
        r = s.post(P, {"inputs": [t for t in fm.v2_inputs(c.columns, [c.rows[i]])
                                  if t["name"] != "Age"]})
        assert r.status == 422, r
    r = s.post("/v1/models/counted:predict", {"instances": [fm.tf_instance(c.columns, c.rows[0]),
                                                            fm.tf_instance(c.columns, c.rows[1])]})
    assert r.status == 200, r
    time.sleep(0.1)  # the completion callback counts HTTP statuses after the answer is sent
    r = s.get("/metrics")
    C.check(r.status == 200 and r.header("Content-Type").startswith("text/plain"),
            "GET /metrics: 200 text/plain", r.headers)
    try:
        samples = fm.parse_prometheus(r.body.decode())
        C.check(True, "the metrics text parses as Prometheus exposition format")
    except ValueError as ex:
        C.check(False, "the metrics text parses as Prometheus exposition format", ex)
        return
    ok = fm.metric(samples, "finmaas_model_requests_total", model="counted", version=1,
                   outcome="success")
    bad = fm.metric(samples, "finmaas_model_requests_total", model="counted", version=1,
                    outcome="failure")
    C.equal((ok, bad), (float(singles + multis + 1), float(fails)),
            "finmaas_model_requests_total{model=counted,version=1} counts successes and failures")
    rows = fm.metric(samples, "finmaas_model_inferences_total", model="counted", version=1)
    C.equal(rows, float(singles + 4 * multis + 2), "finmaas_model_inferences_total counts rows")
    n = fm.metric(samples, "finmaas_model_batch_size_count", model="counted", version=1)
    total = fm.metric(samples, "finmaas_model_batch_size_sum", model="counted", version=1)
    C.equal((n, total), (float(singles + multis + 1), float(singles + 4 * multis + 2)),
            "finmaas_model_batch_size histogram: count and sum")
    with s.seen_lock:
        seen = [x[3] for x in s.seen]
    bad_codes = []
    for code in sorted(set(seen)):
        got = fm.metric(samples, "finmaas_http_requests_total", code=code)
        want = seen.count(code)
        # the /metrics request itself, and one answered just before, may not be counted yet
        if got is None or not (want - 2 <= got <= want):
            bad_codes.append((code, got, want))
    C.check(not bad_codes, "finmaas_http_requests_total{code} counts the answers sent",
            bad_codes)
    # The audit writer's counters: every request above was authenticated, so audited; the
    # commits group them (at most as many commits as entries); the log holds at least as many
    # lines (the keys the test created from the command line are in it too).
    entries = fm.metric(samples, "finmaas_audit_entries_total")
    commits = fm.metric(samples, "finmaas_audit_commits_total")
    took = fm.metric(samples, "finmaas_audit_commit_seconds_total")
    with open(os.path.join(s.home, "audit.log"), "rb") as f:
        lines = sum(1 for _ in f)
    C.check(entries is not None and commits is not None and
            singles + multis + fails + 1 <= entries <= lines and 1 <= commits <= entries and
            took is not None and took > 0 and
            fm.metric(samples, "finmaas_audit_commit_failures_total") == 0 and
            fm.metric(samples, "finmaas_audit_queued_entries") is not None,
            "finmaas_audit_*: entries committed (%s, log lines %d), commits (%s), time (%s), "
            "no failures" % (entries, lines, commits, took))
    rss = None
    for name in ("process_resident_memory_bytes", "finmaas_process_resident_memory_bytes"):
        rss = rss or fm.metric(samples, name)
    vm = s.rss_kb() * 1024
    C.check(rss is not None and 0.5 * vm < rss < 2 * vm,
            "process_resident_memory_bytes is the server's RSS (%s vs VmRSS %d)" % (rss, vm))


def t_access_log(C, c, s, log_text):
    entries, bad = [], []
    for line in log_text.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            bad.append(line)
    C.check(entries and not bad, "the access log is JSON lines (%d entries)" % len(entries),
            bad[:2])
    fields = ("request_id", "method", "path", "status", "latency_ms")
    C.check(all(all(k in e for k in fields) and isinstance(e["latency_ms"], (int, float)) and
                e["latency_ms"] >= 0 for e in entries),
            "every entry has request_id, method, path, status, latency_ms",
            [e for e in entries if not all(k in e for k in fields)][:2])
    # The client address is formatted once per connection; every request on it carries it.
    C.check(all(e.get("remote") == "127.0.0.1" for e in entries),
            "every entry names the client address 127.0.0.1",
            [e for e in entries if e.get("remote") != "127.0.0.1"][:2])
    by_id = {}
    for e in entries:
        by_id.setdefault(e.get("request_id"), []).append(e)
    missing = []
    for rid, method, path, status in s.seen:
        es = by_id.get(rid, [])
        if not any(x.get("method") == method and x.get("path") == path and
                   x.get("status") == status for x in es):
            missing.append((rid, method, path, status, es[:1]))
    C.check(not missing, "each of the %d requests made is logged with its method, path and "
            "status (flushed at shutdown)" % len(s.seen), missing[:3])


def t_keep_alive(C, c, s):
    """Answers keep the connection open (HTTP/1.1 keep-alive), for GETs as for POSTs."""
    conn = s.connection()
    closed = []
    body = json.dumps({"inputs": fm.v2_inputs(c.columns, c.rows[:1])})
    try:
        for method, path, data in (("GET", "/v2/health/live", None),
                                   ("POST", infer_path("credit", 1), body),
                                   ("GET", "/v2/models/credit", None),
                                   ("GET", "/v2/health/ready", None),
                                   ("POST", infer_path("credit", 1), body),
                                   ("GET", "/metrics", None)):
            h = dict(JSON) if data else {}
            h.update(s.auth_headers(method, path))
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            resp = fm.Response(r.status, dict((k.lower(), v) for k, v in r.headers.items()),
                               r.read())
            s.note(resp, method, path)
            if r.will_close:
                closed.append("%s %s (Connection: %s)" % (method, path, r.getheader("Connection")))
    finally:
        conn.close()
    C.check(not closed, "keep-alive: no answer closes the connection", closed)


def t_training(C, c, s):
    """Datasets and training jobs answer valid requests (test_jobs.py tests them in depth)."""
    modeler, auditor = s.keys["modeler"], s.keys["auditor"]
    with open(c.flag_rows_csv, "rb") as f:
        data = f.read()
    r = s.request("POST", "/api/datasets?name=flags-data", data,
                  headers={"Content-Type": "text/csv"}, key=modeler)
    C.check(r.status == 201 and r.json().get("rows") == len(c.flag_rows),
            "POST /api/datasets: 201 with the profile", r)
    for path in ("/api/datasets", "/api/datasets/flags-data"):
        r = s.get(path, key=auditor)
        C.check(r.status == 200, "GET %s: 200" % path, r)
    spec = {"dataset": "flags-data", "name": "flags-job", "target": "y", "positive": "yes",
            "validation": {"folds": 2, "holdout": 0}, "model": {"family": "logistic",
                                                                 "epochs": 5}}
    r = s.post("/api/jobs", spec, key=modeler)
    job_id = r.json().get("id") if r.status == 202 else None
    C.check(job_id, "POST /api/jobs: 202 with the job's id", r)
    r = s.get("/api/jobs/%s/events" % job_id, key=auditor)
    C.check(r.status == 200 and b"event: succeeded" in r.body,
            "GET /api/jobs/{id}/events: the stream ends with 'succeeded'", r)
    for path in ("/api/jobs", "/api/jobs/%s" % job_id):
        r = s.get(path, key=auditor)
        C.check(r.status == 200, "GET %s: 200" % path, r)
    r = s.post("/api/jobs", dict(spec, name="flags-job-2"), key=modeler)
    second = r.json().get("id") if r.status == 202 else None
    r = s.request("DELETE", "/api/jobs/%s" % second, key=modeler)
    C.check(r.status in (200, 202, 409), "DELETE /api/jobs/{id}: cancelled (or already done)", r)
    # fairness and the validation report on the dataset (test_explain_serve.py tests them in
    # depth)
    validator = s.keys["validator"]
    for path in ("/api/models/flags/fairness", "/api/models/flags/versions/1/fairness"):
        r = s.post(path, {"dataset": "flags-data", "protected": ["grp"]}, key=validator)
        C.check(r.status == 200 and r.json().get("rows") == len(c.flag_rows),
                "POST %s: 200 with the fairness of every row" % path, r)
    r = s.get("/api/models/flags/versions/1/report?dataset=flags-data", key=validator)
    C.check(r.status == 200 and b"<canvas" in r.body,
            "GET /api/models/flags/versions/1/report?dataset=flags-data: 200, an HTML page", r)
    r = s.request("DELETE", "/api/datasets/flags-data", key=modeler)
    C.check(r.status == 200, "DELETE /api/datasets/{name}: 200", r)


def t_explain(C, c, s):
    """The explain routes answer valid requests (test_explain_serve.py tests them in depth)."""
    cols = s.get("/v2/models/credit").json()["inputs"]
    body = {"inputs": fm.v2_inputs(cols, c.rows[:3])}
    for path in ("/v2/models/credit/explain", "/v2/models/credit/versions/1/explain"):
        r = s.post(path, body)
        C.check(r.status == 200 and len(r.json().get("explanations", [])) == 3,
                "POST %s: 200 with one explanation per row" % path, r)


def t_apps(C, c, s):
    """The financial applications answer valid requests (test_loan_api.py, test_risk_api.py and
    test_invest_api.py test them in depth)."""
    card = c.w.join("card.fmm")
    fm.finmaas("scorecard", "--data", fm.CREDIT, "--target", "Status", "--positive", "bad",
               "--out", card)
    with open(card, "rb") as f:
        r = s.post("/v2/repository/models/card/versions", f.read(),
                   headers={"Content-Type": "application/octet-stream"}, key=s.keys["modeler"])
    C.check(r.status == 201, "a scorecard uploads as model 'card'", r)
    applicant = {k: v for k, v in c.rows[0].items() if k != "Status"}
    for path in ("/api/apps/loan/card/decide", "/api/apps/loan/card/versions/1/decide"):
        r = s.post(path, {"applicant": applicant})
        C.check(r.status == 200 and r.json().get("decision") in ("approve", "refer", "decline"),
                "POST %s: 200 with a decision" % path, r)
    r = s.post("/api/apps/risk/portfolio",
               {"exposures": [{"id": "a", "pd": 0.02, "lgd": 0.45, "ead": 100}], "scenarios": 1000})
    C.check(r.status == 200 and "monte_carlo" in r.json(),
            "POST /api/apps/risk/portfolio: 200 with a Monte Carlo block", r)
    r = s.post("/api/apps/invest/analyze", {"series": {"A": {"close": [10, 11, 10.5, 12, 11.8]}}})
    C.check(r.status == 200, "POST /api/apps/invest/analyze: 200", r)


def t_route_coverage(C, c, s):
    """Every route of src/server/routes.c was exercised above with a successful request."""
    with open(os.path.join(fm.ROOT, "src", "server", "routes.c")) as f:
        routes = re.findall(r'\{"(GET|POST|PUT|DELETE)", "(/[^"]*)"', f.read())
    C.check(len(routes) >= 20, "the route table of routes.c has %d routes" % len(routes))
    missing = []
    for method, pattern in routes:
        rx = re.compile("^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(pattern)) + "$")
        if not any(m == method and rx.match(path) and 200 <= status < 300
                   for _, m, path, status in s.seen):
            missing.append("%s %s" % (method, pattern))
    C.check(not missing, "every route of the table answered a valid request", missing)


# ---- main ----------------------------------------------------------------------------------


def t_threads(C, c, s):
    """The server's own threads carry names (docs/architecture.md), for top -H, perf and gdb."""
    task = "/proc/%d/task" % s.proc.pid
    names = set()
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                names.add(f.read().strip())
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    for name in ("fm-audit", "fm-access-log", "fm-watcher", "fm-conn-sweep", "fm-job-worker"):
        C.check(name in names, "a thread named " + name, sorted(names))


def sections(C, w):
    c = setup(w)
    s = fm.Server(c.home, w.path).start()
    C.section("health and server metadata", t_health, C, c, s)
    C.section("model metadata", t_metadata, C, c, s)
    C.section("model ready", t_ready, C, c, s)
    C.section("V2 infer, binary, against finmaas predict", t_v2_binary, C, c, s)
    C.section("V2 infer, pre-encoded input", t_encoded, C, c, s)
    C.section("V2 infer, multiclass", t_multiclass, C, c, s)
    C.section("V2 infer, regression", t_regression, C, c, s)
    C.section("V2 infer, BOOL, FP32 and INT64 tensors", t_bool, C, c, s)
    C.section("TensorFlow Serving REST", t_tf, C, c, s)
    C.section("repository: index, load, unload, upload, labels", t_repository, C, c, s)
    C.section("error statuses", t_errors, C, c, s)
    C.section("mangled bodies", t_mutated, C, c, s)
    C.section("large requests", t_large, C, c, s)
    C.section("requests that claim huge shapes", t_claimed_rows, C, c, w)
    C.section("request ids", t_request_ids, C, c, s)
    C.section("metrics", t_metrics, C, c, s)
    C.section("body limit", t_body_limit, C, c, w)
    C.section("keep-alive", t_keep_alive, C, c, s)
    C.section("API keys and the audit log over HTTP", t_keys_audit, C, c, s)
    C.section("datasets and training jobs", t_training, C, c, s)
    C.section("explanations", t_explain, C, c, s)
    C.section("financial applications", t_apps, C, c, s)
    C.section("route table coverage", t_route_coverage, C, c, s)
    C.section("thread names", t_threads, C, c, s)
    fm.stop_checked(C, s, within=10)
    with open(s.access_log) as f:
        log_text = f.read()
    C.section("access log", t_access_log, C, c, s, log_text)


def main():
    return fm.run_main("finmaas serve: endpoints, answers, errors", "fm-serve-", sections)


if __name__ == "__main__":
    sys.exit(main())
