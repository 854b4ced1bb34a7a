"""`finmaas serve`: per-decision explanations, fairness and the validation report over the API.

Models are trained with the real CLI on credit-g.csv (target class, positive "good" = approve,
protected attributes age and personal_status left out of the features): a logistic regression, a
gradient-boosted trees model, a small MLP, a logistic model trained with reweighing, a multiclass
softmax (target housing) and a linear regression (target credit_amount); each is registered and
served, and credit-g.csv is uploaded as the stored dataset "creditg".

  - POST /v2/models/{name}[/versions/{v}]/explain for the logistic, trees and MLP models: the
    infer reply (probabilities equal to /infer's on the same body) plus one explanation per row;
    per row the attributions sum to score - baseline_score (1e-4), the score is the logit of the
    probability /infer answers, the method is linear / treeshap / integrated_gradients, and the
    reasons are the K most negative attributions (toward decline, approve being the positive
    class), largest first. For the linear model, changing one input changes that feature's
    attribution by exactly the change of the score and leaves the others alone (a check of
    phi_j = w_j (x_j - b_j) that does not use the server's numbers for the model). The encoded
    "input" tensor (encoded here from `finmaas inspect`'s preprocessing) gives the same
    explanations. Parameters: reasons, baseline population, method, steps, class (multiclass);
    out-of-range or ill-typed ones answer 400, ones that do not apply to the model 422.
  - No raw input value is echoed in an explanation reply; explanations are audited (v2.explain).
  - TF Serving predict with "explain": true: per prediction object in the row format, a
    top-level "explanations" array for columnar inputs.
  - POST /api/models/{name}[/versions/{v}]/fairness equals `finmaas fairness` on the same model
    file and data (with given protected columns, threshold, reference and bands, and with the
    model's stored protected attributes and threshold); errors: unknown dataset 404, missing
    protected column 422, non-binary model 422, bad bodies 400.
  - GET /api/models/{name}/versions/{v}/report?dataset=NAME: an HTML page with the charts'
    canvases and the model's name; 400 without ?dataset; the audit entry holds no page.
  - Roles: a consumer key may explain but not read fairness or reports (403).
  - Bad requests answer 4xx JSON errors and the server keeps serving; no sanitizer report.

Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_explain_serve.py
"""
import json
import math
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

SHARED = os.environ.get("FM_SHARED", "/work/shared")
CREDIT_G = os.path.join(SHARED, "data", "credit-g.csv")
PROTECTED = "age,personal_status"
COMPLETENESS_TOL = 1e-4
NROWS = 24
CSV = {"Content-Type": "text/csv"}


def train(c, name, *args):
    path = c.w.join(name + ".fmm")
    fm.finmaas("train", "--data", CREDIT_G, "--quiet", "--seed", "3", "--out", path, *args)
    return path


def setup(w):
    c = fm.Context()
    c.w = w
    c.home = w.join("home")
    os.makedirs(c.home)
    binary = ["--target", "class", "--protected", PROTECTED]
    c.files = {
        "credit-lr": train(c, "lr", *binary, "--model", "logistic"),
        "credit-gbt": train(c, "gbt", *binary, "--model", "gbt", "--rounds", "40"),
        "credit-mlp": train(c, "mlp", *binary, "--model", "mlp", "--hidden", "8", "--epochs",
                            "30"),
        "credit-fair": train(c, "fair", *binary, "--model", "logistic", "--reweigh"),
        "housing": train(c, "housing", "--target", "housing", "--model", "softmax", "--drop",
                         PROTECTED),
        "amount": train(c, "amount", "--target", "credit_amount", "--model", "linear", "--drop",
                        PROTECTED),
    }
    for name, path in c.files.items():
        assert fm.registry_add(c.home, name, path) == 1
    c.keys = fm.home_keys(c.home)
    c.described = {name: fm.inspect(path) for name, path in c.files.items()}
    header, rows = fm.read_csv(CREDIT_G)
    c.header = header
    c.all_rows = [dict(zip(header, r)) for r in rows]
    c.rows = c.all_rows[:NROWS]
    return c


def columns_of(s, name):
    meta = s.get("/v2/models/%s" % name).json()
    return meta["inputs"]


def error_of(r):
    try:
        doc = r.json()
    except ValueError:
        return ""
    return doc.get("error", "") if isinstance(doc, dict) else ""


def logit(p):
    return math.log(p / (1.0 - p))


def probabilities(doc):
    out = fm.output(doc, "probability")
    return out["data"] if out else None


def completeness(e):
    """|sum of attributions - (score - baseline_score)|."""
    return abs(sum(e["attributions"].values()) - (e["score"] - e["baseline_score"]))


def check_reasons(e, k):
    """None when e's reasons are the k most negative attributions, largest first; else why."""
    att = e["attributions"]
    reasons = e.get("reasons")
    if not isinstance(reasons, list):
        return "no reasons list"
    negative = sorted((v, f) for f, v in att.items() if v < 0)
    want = [f for _, f in negative[:k]]
    got = [r.get("feature") for r in reasons]
    if [att[f] for f in got if f in att] != [att[f] for f in want] or len(got) != len(want):
        return "reasons %r, the most negative attributions are %r" % (got, want)
    for r in reasons:
        if not (r.get("contribution", 0) < 0) or abs(r["contribution"] - att[r["feature"]]) > 1e-12:
            return "reason %r: contribution not its (negative) attribution %r" % (
                r, att.get(r.get("feature")))
        if not isinstance(r.get("text"), str) or not r["text"]:
            return "reason %r has no text" % r
    return None


# ---- V2 explain ----------------------------------------------------------------------------


def t_explain(C, c, s):
    methods = {"credit-lr": "linear", "credit-gbt": "treeshap",
               "credit-mlp": "integrated_gradients"}
    for name, method in methods.items():
        cols = columns_of(s, name)
        body = {"id": "req-1", "inputs": fm.v2_inputs(cols, c.rows)}
        r = s.post("/v2/models/%s/explain" % name, body)
        C.check(r.status == 200, "%s: POST explain of %d rows: 200" % (name, NROWS), r)
        if r.status != 200:
            continue
        doc = r.json()
        inf = s.post("/v2/models/%s/infer" % name, body).json()
        C.check(doc.get("id") == "req-1" and doc.get("outputs") == inf.get("outputs"),
                "%s: its outputs are /infer's on the same body" % name,
                (doc.get("outputs"), inf.get("outputs")))
        ex = doc.get("explanations") or []
        C.equal(len(ex), NROWS, "%s: one explanation per row" % name)
        probs = probabilities(inf)
        worst = max(completeness(e) for e in ex)
        C.check(worst <= COMPLETENESS_TOL,
                "%s: attributions sum to score - baseline_score (largest gap %.2e)" % (name, worst))
        gap = max(abs(1 / (1 + math.exp(-e["score"])) - p) for e, p in zip(ex, probs))
        C.check(gap <= 2e-6, "%s: sigmoid(score) is /infer's probability (largest gap %.2e)"
                % (name, gap))
        C.check(all(e["method"] == method and e["baseline"] == "reference" and
                    e["output"] == "good" for e in ex),
                "%s: method %s, baseline reference, output 'good'" % (name, method), ex[0])
        features = [f["name"] for f in c.described[name]["features"]]
        C.check(all(list(e["attributions"]) == features for e in ex),
                "%s: attributions name every feature, in order (no protected column)" % name,
                list(ex[0]["attributions"]))
        bad = [check_reasons(e, 4) for e in ex]
        bad = [b for b in bad if b]
        C.check(not bad, "%s: 4 reasons per row, the most negative attributions (toward "
                "decline), largest first" % name, bad[:3])
        declined = [e for e, p in zip(ex, probs) if p < 0.5]
        C.check(all(e["reasons"] for e in declined) and declined,
                "%s: every declined applicant (%d) gets reasons" % (name, len(declined)))
        raw = {v for row in c.rows for k, v in row.items()
               if k != "class" and len(v) >= 5 and not v.replace(".", "").isdigit()}
        leaked = [v for v in raw if v in r.body.decode()]
        C.check(not leaked, "%s: no raw input value is echoed" % name, leaked[:5])
        r = s.post("/v2/models/%s/versions/1/explain" % name, body)
        C.check(r.status == 200 and r.json().get("explanations") == ex,
                "%s: POST /versions/1/explain: the same explanations" % name, r)


def t_linear(C, c, s):
    """Changing one input of a linear model moves only that feature's attribution, by exactly the
    change of the score."""
    name = "credit-lr"
    cols = columns_of(s, name)
    base = dict(c.rows[0])
    changes = {"duration": "48", "credit_amount": "15000", "checking_status": "no checking",
               "purpose": "education"}
    ok, detail = True, []
    for feature, value in changes.items():
        other = dict(base, **{feature: value})
        body = {"inputs": fm.v2_inputs(cols, [base, other])}
        r = s.post("/v2/models/%s/explain" % name, body)
        if r.status != 200:
            ok, detail = False, [feature, r]
            break
        a, b = r.json()["explanations"]
        moved = b["attributions"][feature] - a["attributions"][feature]
        rest = max(abs(b["attributions"][f] - a["attributions"][f])
                   for f in a["attributions"] if f != feature)
        gap = abs(moved - (b["score"] - a["score"]))
        if gap > 1e-9 or rest > 1e-12 or a["baseline_score"] != b["baseline_score"]:
            ok = False
            detail.append((feature, gap, rest))
    C.check(ok, "logistic: changing one input moves only its attribution, by the score's change "
            "(%s)" % ", ".join(changes), detail)


def t_encoded(C, c, s):
    name = "credit-lr"
    prep = c.described[name]["preprocessing"]
    x = [fm.encode_row(prep, r) for r in c.rows[:5]]
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [5, len(x[0])],
                        "data": x}]}
    r = s.post("/v2/models/%s/explain" % name, body)
    raw = s.post("/v2/models/%s/explain" % name,
                 {"inputs": fm.v2_inputs(columns_of(s, name), c.rows[:5])})
    ok = r.status == 200 and raw.status == 200
    gap = 1.0
    if ok:
        gap = max(abs(a["attributions"][f] - b["attributions"][f])
                  for a, b in zip(r.json()["explanations"], raw.json()["explanations"])
                  for f in a["attributions"])
    C.check(ok and gap < 1e-9, "an encoded 'input' tensor explains like the raw inputs (largest "
            "difference %.2e)" % gap, (r, raw))


def t_parameters(C, c, s):
    name = "credit-lr"
    cols = columns_of(s, name)
    inputs = fm.v2_inputs(cols, c.rows[:6])
    path = "/v2/models/%s/explain" % name

    def ask(params, model=name):
        p = "/v2/models/%s/explain" % model
        body = {"inputs": fm.v2_inputs(columns_of(s, model), c.rows[:6]), "parameters": params}
        return s.post(p, body)

    r = ask({"reasons": 2})
    ex = r.json().get("explanations", []) if r.status == 200 else []
    C.check(ex and all(check_reasons(e, 2) is None for e in ex), "reasons: 2 gives 2 reasons", r)
    r = ask({"reasons": 0})
    C.check(r.status == 200 and all(e["reasons"] == [] for e in r.json()["explanations"]),
            "reasons: 0 gives none", r)
    ref = s.post(path, {"inputs": inputs}).json()["explanations"]
    r = ask({"baseline": "population", "reasons": 3})
    ex = r.json().get("explanations", []) if r.status == 200 else []
    C.check(ex and all(e["baseline"] == "population" and completeness(e) <= COMPLETENESS_TOL
                       for e in ex),
            "baseline population: complete against its own baseline score", r)
    C.check(ex and all(abs(a["score"] - b["score"]) < 1e-12 for a, b in zip(ex, ref)) and
            ex[0]["baseline_score"] != ref[0]["baseline_score"],
            "baseline population: same scores, another baseline score")
    C.check(ex and all([x["feature"] for x in a["reasons"]] ==
                       [x["feature"] for x in b["reasons"][:3]] for a, b in zip(ex, ref)),
            "baseline population: the reasons are still those against the reference")
    r = ask({"method": "linear", "steps": 10})
    C.check(r.status == 200 and r.json()["explanations"] == ref,
            "method linear (and steps, unused by it) on the logistic model: the default's "
            "explanations", r)
    r = ask({"method": "integrated_gradients", "steps": 16}, model="credit-mlp")
    ex = r.json().get("explanations", []) if r.status == 200 else []
    C.check(ex and all(completeness(e) <= COMPLETENESS_TOL for e in ex),
            "mlp: method integrated_gradients with steps 16: complete", r)
    for params, status, what in [
        ({"method": "treeshap"}, 422, "method treeshap on a logistic model"),
        ({"method": "shapley"}, 422, "method shapley over 18 features (more than 16)"),
        ({"class": "good"}, 422, "class on a binary model"),
        ({"reasons": 65}, 400, "reasons 65"),
        ({"reasons": -1}, 400, "reasons -1"),
        ({"reasons": "many"}, 400, "reasons as a string"),
        ({"reasons": 2.5}, 400, "reasons 2.5"),
        ({"steps": 0}, 400, "steps 0"),
        ({"steps": 10001}, 400, "steps 10001"),
        ({"baseline": "median"}, 400, "baseline median"),
        ({"baseline": 1}, 400, "baseline as a number"),
        ({"method": "magic"}, 400, "method magic"),
        ([1, 2], 400, "parameters as an array"),
    ]:
        r = ask(params)
        C.check(r.status == status and error_of(r), "%s: %d with a JSON error" % (what, status), r)
    r = s.post(path, {"inputs": inputs, "parameters": {"unrelated": True}})
    C.check(r.status == 200, "an unrelated parameter is ignored", r)
    r = s.post("/v2/models/credit-lr/infer", {"inputs": inputs, "parameters": {"reasons": 99}})
    C.check(r.status == 200 and "explanations" not in r.json(),
            "infer ignores explanation parameters and gives no explanations", r)


def t_other_tasks(C, c, s):
    cols = columns_of(s, "housing")
    classes = c.described["housing"]["classes"]
    body = {"inputs": fm.v2_inputs(cols, c.rows[:8])}
    r = s.post("/v2/models/housing/explain", body)
    ok = r.status == 200
    doc = r.json() if ok else {}
    ex = doc.get("explanations", [])
    flat = probabilities(doc) if ok else []
    k = len(classes)
    probs = [flat[i:i + k] for i in range(0, len(flat), k)]
    predicted = [classes[max(range(k), key=lambda j: p[j])] for p in probs]
    C.check(ok and [e["output"] for e in ex] == predicted,
            "multiclass: each row explains its predicted class", r)
    C.check(ok and all("reasons" not in e and completeness(e) <= COMPLETENESS_TOL for e in ex),
            "multiclass: complete, and no reason codes", ex[:1])
    r = s.post("/v2/models/housing/explain", dict(body, parameters={"class": classes[0]}))
    ex = r.json().get("explanations", []) if r.status == 200 else []
    C.check(ex and all(e["output"] == classes[0] and completeness(e) <= COMPLETENESS_TOL
                       for e in ex), "multiclass: class '%s' explains that class" % classes[0], r)
    r = s.post("/v2/models/housing/explain", dict(body, parameters={"class": "castle"}))
    C.check(r.status == 422 and "castle" in error_of(r), "multiclass: an unknown class: 422", r)
    r = s.post("/v2/models/housing/explain", dict(body, parameters={"class": 1}))
    C.check(r.status == 400 and error_of(r), "multiclass: class as a number: 400", r)
    cols = columns_of(s, "amount")
    r = s.post("/v2/models/amount/explain", {"inputs": fm.v2_inputs(cols, c.rows[:8])})
    doc = r.json() if r.status == 200 else {}
    pred = (fm.output(doc, "prediction") or {}).get("data", [])
    ex = doc.get("explanations", [])
    C.check(r.status == 200 and len(ex) == 8 and
            all(abs(e["score"] - p) <= 1e-5 * max(1.0, abs(p)) and "reasons" not in e and
                completeness(e) <= COMPLETENESS_TOL * max(1.0, abs(p)) for e, p in zip(ex, pred)),
            "regression: the score is the prediction (float precision), complete, no reasons", r)


def t_bad_requests(C, c, s):
    cols = columns_of(s, "credit-lr")
    path = "/v2/models/credit-lr/explain"
    cases = [
        (b"{", 400, "malformed JSON"),
        (b"[]", 400, "a JSON array"),
        (json.dumps({"inputs": []}).encode(), 400, "no inputs"),
        (json.dumps({"inputs": [{"name": "duration", "datatype": "FP64", "shape": [2],
                                 "data": [1]}]}).encode(), 422, "a shape that does not match"),
        (json.dumps({"inputs": fm.v2_inputs(cols, c.rows[:2])})[:-5].encode(), 400,
         "a truncated body"),
    ]
    for body, status, what in cases:
        r = s.post(path, body, headers={"Content-Type": "application/json"})
        C.check(r.status == status and error_of(r),
                "explain with %s: %d JSON error" % (what, status), r)
    r = s.post("/v2/models/nosuch/explain", {"inputs": fm.v2_inputs(cols, c.rows[:1])})
    C.check(r.status == 404 and error_of(r), "explain of an unknown model: 404", r)
    r = s.post("/v2/models/credit-lr/versions/7/explain",
               {"inputs": fm.v2_inputs(cols, c.rows[:1])})
    C.check(r.status == 404 and error_of(r), "explain of an unknown version: 404", r)
    r = s.get(path)
    C.check(r.status == 405, "GET explain: 405", r)
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000000\r\n" % path).encode() + s.auth_line("POST", path) + b"\r\n"
    r = s.raw(head + b"{")
    C.check(r.status == 413, "explain with a body declared over the limit: 413", r)
    big = {"inputs": fm.v2_inputs(cols, c.all_rows)}
    r = s.post(path, big)
    ex = r.json().get("explanations", []) if r.status == 200 else []
    C.check(len(ex) == len(c.all_rows) and all(completeness(e) <= COMPLETENESS_TOL for e in ex),
            "explain of all %d rows at once: complete" % len(c.all_rows), r)
    C.check(s.get("/v2/health/ready").status == 200 and
            s.post("/v2/models/credit-lr/infer", {"inputs": fm.v2_inputs(cols, c.rows[:1])})
            .status == 200, "the server still serves")


def t_tf(C, c, s):
    cols = columns_of(s, "credit-gbt")
    inst = [fm.tf_instance(cols, r) for r in c.rows[:5]]
    r = s.post("/v1/models/credit-gbt:predict", {"instances": inst, "explain": True,
                                                 "reasons": 3})
    preds = r.json().get("predictions", []) if r.status == 200 else []
    ok = len(preds) == 5 and all("explanation" in p for p in preds)
    C.check(ok, "TF row format, explain true: each prediction has its explanation", r)
    if ok:
        C.check(all(abs(1 / (1 + math.exp(-p["explanation"]["score"])) - p["probability"]) <= 2e-6
                    and completeness(p["explanation"]) <= COMPLETENESS_TOL and
                    check_reasons(p["explanation"], 3) is None for p in preds),
                "  its score is the logit of the probability, complete, 3 reasons")
    r = s.post("/v1/models/credit-gbt:predict", {"instances": inst})
    C.check(r.status == 200 and all("explanation" not in p for p in r.json()["predictions"]),
            "TF without explain: no explanations", r)
    columnar = {"inputs": {c_["name"]: [i[c_["name"]] for i in inst] for c_ in cols},
                "explain": True}
    r = s.post("/v1/models/credit-gbt:predict", columnar)
    doc = r.json() if r.status == 200 else {}
    ex = doc.get("explanations", [])
    C.check(len(ex) == 5 and all(abs(1 / (1 + math.exp(-e["score"])) - p) <= 2e-6
                                 for e, p in zip(ex, doc["outputs"]["probability"])),
            "TF columnar, explain true: a top-level explanations array in row order", r)
    r = s.post("/v1/models/amount:predict",
               {"instances": [fm.tf_instance(columns_of(s, "amount"), x) for x in c.rows[:3]],
                "explain": True})
    doc = r.json() if r.status == 200 else {}
    C.check(len(doc.get("explanations", [])) == 3 and len(doc.get("predictions", [])) == 3,
            "TF regression rows, explain true: predictions and a top-level explanations array", r)
    for body, status, what in [({"instances": inst, "explain": "yes"}, 400, "explain 'yes'"),
                               ({"instances": inst, "explain": True, "reasons": 100}, 400,
                                "reasons 100"),
                               ({"instances": inst, "explain": True, "method": "linear"}, 422,
                                "method linear on trees")]:
        r = s.post("/v1/models/credit-gbt:predict", body)
        C.check(r.status == status and error_of(r), "TF with %s: %d" % (what, status), r)


def t_audit_roles(C, c, s):
    K = c.keys
    cols = columns_of(s, "credit-lr")
    body = {"inputs": fm.v2_inputs(cols, c.rows[:1])}
    r = s.post("/v2/models/credit-lr/explain", body, headers={"X-Request-Id": "explain-audit-1"},
               key=K["consumer"])
    C.check(r.status == 200, "a consumer key explains: 200", r)
    r = s.post("/v2/models/credit-lr/explain", body, key=K["auditor"])
    C.check(r.status == 403 and error_of(r), "an auditor key may not explain: 403", r)
    fair = {"dataset": "creditg", "protected": ["age"]}
    r = s.post("/api/models/credit-lr/fairness", fair, key=K["consumer"])
    C.check(r.status == 403 and error_of(r), "a consumer key may not read fairness: 403", r)
    r = s.get("/api/models/credit-lr/versions/1/report?dataset=creditg", key=K["consumer"])
    C.check(r.status == 403 and error_of(r), "a consumer key may not read a report: 403", r)
    r = s.get("/api/audit?model=credit-lr&limit=100000", key=K["auditor"])
    entries = r.json() if r.status == 200 else []
    mine = [e for e in entries if e.get("request_id") == "explain-audit-1"]
    C.check(len(mine) == 1 and mine[0].get("action") == "v2.explain" and
            mine[0].get("status") == 200 and mine[0].get("role") == "consumer",
            "the explanation is audited: action v2.explain, status 200, the consumer's role",
            mine or entries[-3:])
    reports = [e for e in entries if e.get("action") == "model.report" and e.get("status") == 200]
    C.check(reports and all(len(e.get("output") or "") < 300 and "<html" not in
                            (e.get("output") or "").lower() for e in reports),
            "the report's audit entries record its size and digest, not the page",
            [e.get("output") for e in reports][:2])
    fairs = [e for e in entries if e.get("action") == "model.fairness" and e.get("status") == 200]
    C.check(fairs and all(e.get("detail") == "dataset=creditg" for e in fairs),
            "fairness requests are audited with the dataset named", fairs[:1])


# ---- fairness ------------------------------------------------------------------------------


def cli_fairness(model, *args):
    return json.loads(fm.finmaas("fairness", "--model", model, "--data", CREDIT_G, *args))


def t_fairness(C, c, s):
    V = c.keys["validator"]
    lr = c.files["credit-lr"]
    path = "/api/models/credit-lr/fairness"
    r = s.post(path, {"dataset": "creditg", "protected": ["age", "personal_status"],
                      "threshold": 0.5}, key=V)
    want = cli_fairness(lr, "--protected", PROTECTED, "--threshold", "0.5")
    C.check(r.status == 200 and r.json() == want,
            "fairness (age, personal_status, threshold 0.5) equals `finmaas fairness`", r)
    stored = c.described["credit-lr"]["fairness"]
    r = s.post(path, {"dataset": "creditg"}, key=c.keys["auditor"])
    want = cli_fairness(lr, "--protected", PROTECTED, "--threshold", repr(stored["threshold"]),
                        "--bands", "age=" + ",".join("%g" % e for e in
                                                     stored["protected"][0]["bands"]))
    C.check(r.status == 200 and r.json() == want,
            "fairness with the stored protected attributes and threshold equals the CLI's", r)
    body = {"dataset": "creditg", "protected": ["personal_status", "age"], "threshold": 0.7,
            "reference": {"personal_status": "male single"}, "bands": {"age": [30, 50]}}
    r = s.post("/api/models/credit-gbt/versions/1/fairness", body, key=c.keys["modeler"])
    want = cli_fairness(c.files["credit-gbt"], "--protected", "personal_status,age",
                        "--threshold", "0.7", "--reference", "personal_status=male single",
                        "--bands", "age=30,50")
    C.check(r.status == 200 and r.json() == want,
            "trees, /versions/1/fairness with threshold, reference and bands equals the CLI's", r)
    for body, status, what, word in [
        ({"dataset": "nosuch"}, 404, "an unknown dataset", "nosuch"),
        ({"dataset": "creditg", "protected": ["religion"]}, 422, "a protected column the "
         "dataset lacks", "religion"),
        ({"protected": ["age"]}, 400, "no dataset", "dataset"),
        ({"dataset": "../etc"}, 400, "a bad dataset name", ""),
        ({"dataset": "creditg", "threshold": 2}, 400, "threshold 2", "threshold"),
        ({"dataset": "creditg", "threshold": "half"}, 400, "threshold as text", "threshold"),
        ({"dataset": "creditg", "protected": []}, 400, "an empty protected list", "protected"),
        ({"dataset": "creditg", "protected": ["age", "age"]}, 400, "a column twice", "age"),
        ({"dataset": "creditg", "protected": ["class"]}, 400, "the target as protected", "class"),
        ({"dataset": "creditg", "protected": ["age"], "reference": {"job": "x"}}, 400,
         "a reference for an unprotected column", "job"),
        ({"dataset": "creditg", "protected": ["age"], "bands": {"age": [50, 30]}}, 400,
         "decreasing bands", "bands"),
        ({"dataset": "creditg", "protected": ["age"], "reference": {"age": "nobody"}}, 422,
         "an unknown reference group", "nobody"),
    ]:
        r = s.post(path, body, key=V)
        C.check(r.status == status and error_of(r) and word in error_of(r),
                "fairness with %s: %d naming it" % (what, status), r)
    r = s.post(path, b"{not json", key=V, headers={"Content-Type": "application/json"})
    C.check(r.status == 400 and error_of(r), "fairness with malformed JSON: 400", r)
    r = s.post("/api/models/housing/fairness", {"dataset": "creditg", "protected": ["age"]}, key=V)
    C.check(r.status == 422 and "binary" in error_of(r), "fairness of a multiclass model: 422", r)
    r = s.post("/api/models/nosuch/fairness", {"dataset": "creditg"}, key=V)
    C.check(r.status == 404, "fairness of an unknown model: 404", r)
    r = s.post("/api/models/credit-lr/versions/5/fairness", {"dataset": "creditg"}, key=V)
    C.check(r.status == 404, "fairness of an unknown version: 404", r)
    r = s.post("/api/models/housing/fairness", {"dataset": "creditg"}, key=V)
    C.check(r.status == 422, "fairness of a model without stored attributes nor a list: 4xx", r)
    C.check(s.get("/v2/health/ready").status == 200, "the server still serves")


# ---- report --------------------------------------------------------------------------------


def t_report(C, c, s):
    V = c.keys["validator"]
    for name in ("credit-lr", "credit-gbt", "credit-fair", "housing", "amount"):
        r = s.get("/api/models/%s/versions/1/report?dataset=creditg" % name, key=V)
        html = r.body.decode("utf-8", "replace")
        C.check(r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8" and
                "<canvas" in html and name in html and html.lstrip().lower().startswith(
                    "<!doctype html"),
                "%s: report on creditg: HTML with canvases and the model's name (%d bytes)"
                % (name, len(r.body)), r)
    r = s.get("/api/models/credit-lr/versions/1/report", key=V)
    C.check(r.status == 400 and "dataset" in error_of(r),
            "report without ?dataset: 400 naming the parameter", r)
    r = s.get("/api/models/credit-lr/versions/1/report?dataset=", key=V)
    C.check(r.status == 400 and "dataset" in error_of(r), "report with an empty dataset: 400", r)
    r = s.get("/api/models/credit-lr/versions/1/report?dataset=nosuch", key=V)
    C.check(r.status == 404 and error_of(r), "report on an unknown dataset: 404", r)
    r = s.get("/api/models/credit-lr/versions/3/report?dataset=creditg", key=V)
    C.check(r.status == 404 and error_of(r), "report of an unknown version: 404", r)
    r = s.get("/api/models/credit-lr/versions/1/report?dataset=%s" %
              urllib.parse.quote("../x"), key=V)
    C.check(r.status == 400 and error_of(r), "report with a bad dataset name: 400", r)
    r = s.get("/api/models/credit-lr/versions/1/report?dataset=other", key=V)
    C.check(r.status == 422 and "class" in error_of(r),
            "report on a dataset without the target: 422 naming it", r)


def t_batched(C, c, w):
    """With dynamic batching the rows are scored on the batcher's thread and explained after the
    request resumes: the same explanations as inline, also under concurrent requests."""
    s = fm.Server(c.home, w.path, name="batched", args=["--batch-max-size", "8"]).start()
    try:
        cols = columns_of(s, "credit-mlp")
        bodies = [json.dumps({"inputs": fm.v2_inputs(cols, [r]), "parameters": {"reasons": 2}})
                  .encode() for r in c.rows[:16]]
        answers = [None] * len(bodies)

        def one(k):
            cl = fm.Client(s)
            try:
                for i in range(k, len(bodies), 4):
                    answers[i] = cl.post("/v2/models/credit-mlp/explain", bodies[i])
            finally:
                cl.close()

        errors = fm.run_threads(4, one)
        ok = not errors and all(a is not None and a.status == 200 for a in answers)
        C.check(ok, "16 single-row explain requests on 4 threads through the batcher: 200",
                errors[:1] or [a for a in answers if a is None or a.status != 200][:1])
        whole = s.post("/v2/models/credit-mlp/explain",
                       {"inputs": fm.v2_inputs(cols, c.rows[:16]), "parameters": {"reasons": 2}})
        if ok and whole.status == 200:
            want = whole.json()["explanations"]
            got = [a.json()["explanations"][0] for a in answers]
            gap = max(abs(g["attributions"][f] - x["attributions"][f])
                      for g, x in zip(got, want) for f in g["attributions"])
            C.check(gap < 1e-9 and [g["reasons"] for g in got] == [x["reasons"] for x in want],
                    "  each equals the row's explanation in one 16-row request (largest "
                    "difference %.2e)" % gap)
        else:
            C.check(False, "  a 16-row explain request through the batcher: 200", whole)
    finally:
        fm.stop_checked(C, s)


def sections(C, w):
    c = setup(w)
    s = fm.Server(c.home, w.path, name="main").start()
    data = open(CREDIT_G, "rb").read()
    r = s.request("POST", "/api/datasets?name=creditg", data, headers=CSV, key=c.keys["modeler"])
    C.check(r.status == 201, "POST /api/datasets?name=creditg: 201", r)
    other = b"a,b\n1,x\n2,y\n"
    r = s.request("POST", "/api/datasets?name=other", other, headers=CSV, key=c.keys["modeler"])
    C.check(r.status == 201, "POST /api/datasets?name=other: 201", r)
    C.section("V2 explain: logistic, trees, MLP", t_explain, C, c, s)
    C.section("linear attributions against a change of one input", t_linear, C, c, s)
    C.section("encoded input tensors", t_encoded, C, c, s)
    C.section("explanation parameters", t_parameters, C, c, s)
    C.section("multiclass and regression", t_other_tasks, C, c, s)
    C.section("bad explain requests", t_bad_requests, C, c, s)
    C.section("TF Serving predict with explain", t_tf, C, c, s)
    C.section("fairness against finmaas fairness", t_fairness, C, c, s)
    C.section("validation report", t_report, C, c, s)
    C.section("audit and roles", t_audit_roles, C, c, s)
    fm.stop_checked(C, s)
    C.section("explanations with dynamic batching", t_batched, C, c, w)


def main():
    return fm.run_main("finmaas serve: explanations, fairness, report", "fm-explain-", sections)


if __name__ == "__main__":
    sys.exit(main())
