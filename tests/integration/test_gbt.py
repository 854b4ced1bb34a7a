"""Gradient-boosted trees (`finmaas train --model gbt`) end to end: training with the CLI, the
booster inside the .fmm against the xgboost Python package, serving, and quality.

1. Models are trained with the real CLI on ../shared/data/credit_data.csv (binary Status,
   multiclass Marital, regression Amount) and credit-g.csv (binary class). Each .fmm is read here
   with a small safetensors reader; its "gbt.booster" tensor (XGBoost's own JSON) is loaded into
   xgboost.Booster, the rows are encoded here from the `finmaas inspect` preprocessing parameters
   (fmserve.encode_row), and xgboost's predictions must equal `finmaas predict` within 1e-6
   (absolute for probabilities, relative for regression).
2. The models are served (API keys, audit log: fmserve handles them) inline and with dynamic
   batching; V2 infer and TensorFlow Serving predict answers, for single rows from several threads
   and for whole tables, must equal `finmaas predict`.
3. Quality: a stratified 30% holdout (scikit-learn train_test_split, random_state=42): test AUC on
   credit_data >= 0.84 and on credit-g >= 0.75, from `finmaas predict` output scored by
   scikit-learn.
4. Training is deterministic for a seed (1 and 2 threads); early stopping keeps the best round.

Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_gbt.py
"""
import csv
import json
import os
import struct
import sys

import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

SHARED = os.environ.get("FM_SHARED") or os.path.join(os.path.dirname(fm.ROOT), "shared")
CREDIT = os.path.join(SHARED, "data", "credit_data.csv")
CREDIT_G = os.path.join(SHARED, "data", "credit-g.csv")
TOL = 1e-6


def read_safetensors(path):
    """(header, data section) of a safetensors file; raises when it is malformed."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    return header, blob[8 + n:]


def booster_bytes(path):
    header, data = read_safetensors(path)
    t = header["gbt.booster"]
    begin, end = t["data_offsets"]
    if t["dtype"] != "U8" or t["shape"] != [end - begin]:
        raise ValueError("gbt.booster is %s %r" % (t["dtype"], t["shape"]))
    return data[begin:end], header


def load_booster(path):
    raw, _ = booster_bytes(path)
    b = xgb.Booster()
    b.load_model(bytearray(raw))
    b.set_param({"nthread": 1})
    return b


def rows_of(path):
    header, rows = fm.read_csv(path)
    return header, [dict(zip(header, r)) for r in rows]


def encode(model, rows):
    prep = fm.inspect(model)["preprocessing"]
    return np.array([fm.encode_row(prep, r) for r in rows], dtype=np.float64)


def train(data, target, out, *extra):
    text = fm.finmaas("train", "--data", data, "--target", target, "--out", out, "--model", "gbt",
                      "--quiet", *extra)
    return json.loads(text)


class Case:
    """One trained model: its path, the rows it is checked on, their CSV and predict output."""


def make_case(w, name, data, target, extra, nrows=None):
    c = Case()
    c.name = name
    c.model = w.join(name + ".fmm")
    c.summary = train(data, target, c.model, *extra)
    header, rows = rows_of(data)
    c.rows = rows if nrows is None else rows[:nrows]
    c.csv = fm.write_csv(w.join(name + "_rows.csv"), header, [[r[h] for h in header]
                                                              for r in c.rows])
    c.pred = fm.predict(c.model, c.csv)
    c.inspect = fm.inspect(c.model)
    return c


# ---- 1. the booster against xgboost ----------------------------------------------------------


def t_against_xgboost(C, cases):
    for c in cases:
        d = c.inspect
        b = load_booster(c.model)
        X = encode(c.model, c.rows)
        C.equal(X.shape[1], d["encoded_features"]["count"],
                "%s: the encoding computed here has the model's width" % c.name)
        C.equal(b.num_features(), X.shape[1], "%s: xgboost reads %d features" % (c.name,
                                                                               X.shape[1]))
        C.equal(b.num_boosted_rounds(), d["booster"]["rounds"],
                "%s: xgboost counts the rounds inspect reports (%d)" % (c.name,
                                                                       d["booster"]["rounds"]))
        got = b.inplace_predict(X)
        via_matrix = b.predict(xgb.DMatrix(X))
        C.check(np.array_equal(got, via_matrix), "%s: in-place and DMatrix predictions agree" %
                c.name)
        if d["task"] == "regression":
            want = np.array([e["prediction"] for e in c.pred])
            worst = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
        elif d["task"] == "binary":
            want = np.array([e["p_" + d["positive_class"]] for e in c.pred])
            worst = float(np.max(np.abs(got - want)))
        else:
            want = np.array([[e["p_" + k] for k in d["classes"]] for e in c.pred])
            worst = float(np.max(np.abs(got - want)))
        C.check(worst <= TOL, "%s: xgboost on the .fmm's booster equals finmaas predict on %d "
                "rows (largest difference %.2g)" % (c.name, len(c.rows), worst), worst)


def t_describe(C, cases):
    c = cases[0]
    d = c.inspect
    t = d["training"]
    g = t["gbt"]
    C.check(d["family"] == "gbt" and "architecture" not in d, "inspect: family gbt, no network")
    C.check(d["booster"]["library"] == "xgboost" and d["booster"]["format"] == "json" and
            d["booster"]["features"] == d["encoded_features"]["count"] and
            d["booster"]["max_depth"] <= g["max_depth"] and
            d["booster"]["trees"] == d["booster"]["rounds"],
            "inspect: booster library, format, features, depth, trees", d["booster"])
    C.check(g["rounds"] == 300 and g["max_depth"] == 4 and g["eta"] == 0.05 and
            g["tree_method"] == "hist" and g["early_stopping"] == 30,
            "inspect: the gbt training settings (defaults)", g)
    C.check(t["best_round"] == d["booster"]["rounds"] and
            (t["rounds_run"] - t["best_round"] == 30 if t["stopped_early"] else
             t["rounds_run"] == 300),
            "inspect: the best round is kept; early stopping came 30 rounds after it",
            {k: t[k] for k in ("rounds_run", "best_round", "stopped_early")})
    hist = t["history"]
    losses = [h["val_logloss"] for h in hist]
    C.check(len(hist) == t["rounds_run"] and
            min(range(len(losses)), key=lambda i: losses[i]) + 1 == t["best_round"],
            "inspect: the history has every round; the best round has the lowest loss")
    C.check(c.summary["best_round"] == t["best_round"] and c.summary["trees"] ==
            d["booster"]["trees"] and "auc" in c.summary["validation"],
            "train summary: trees, best round, validation AUC", c.summary)


def t_deterministic(C, w):
    for threads in ("1", "2"):
        a, b = w.join("det_a.fmm"), w.join("det_b.fmm")
        for path in (a, b):
            train(CREDIT, "Status", path, "--positive", "bad", "--rounds", "60", "--threads",
                  threads, "--seed", "5")
        C.check(booster_bytes(a)[0] == booster_bytes(b)[0],
                "same seed, %s thread(s): the same booster, byte for byte" % threads)
    train(CREDIT, "Status", w.join("det_c.fmm"), "--positive", "bad", "--rounds", "60",
          "--seed", "6")
    C.check(booster_bytes(w.join("det_c.fmm"))[0] != booster_bytes(w.join("det_a.fmm"))[0],
            "another seed: another booster (subsampling)")


def t_options(C, w):
    m = w.join("opts.fmm")
    s = train(CREDIT, "Status", m, "--positive", "bad", "--rounds", "40", "--max-depth", "2",
              "--eta", "0.2", "--subsample", "1", "--colsample", "0.5", "--min-child-weight",
              "3", "--gbt-lambda", "2", "--gbt-alpha", "0.5", "--early-stopping", "0",
              "--class-weight", "balanced")
    d = fm.inspect(m)
    g = d["training"]["gbt"]
    C.check(g["max_depth"] == 2 and g["eta"] == 0.2 and g["subsample"] == 1 and
            g["colsample"] == 0.5 and g["min_child_weight"] == 3 and g["lambda"] == 2 and
            g["alpha"] == 0.5 and g["early_stopping"] == 0 and
            d["training"]["class_weight"] == "balanced",
            "every gbt flag reaches the model", g)
    C.check(s["rounds_run"] == 40 and s["best_round"] == 40 and d["booster"]["rounds"] == 40 and
            d["booster"]["max_depth"] <= 2, "--early-stopping 0 keeps all 40 rounds", s)
    rc, _, err = fm.run_cli("train", "--data", CREDIT, "--target", "Status", "--rounds", "5",
                            "--out", w.join("x.fmm"))
    C.check(rc == 2 and "--rounds applies to --model gbt" in err,
            "a gbt flag without --model gbt is a usage error", err)
    rc, _, err = fm.run_cli("train", "--data", CREDIT, "--target", "Status", "--model", "gbt",
                            "--subsample", "0", "--out", w.join("x.fmm"))
    C.check(rc == 2 and "--subsample" in err, "--subsample 0 is refused", err)


# ---- 2. serving ------------------------------------------------------------------------------


def infer_path(name):
    return "/v2/models/%s/infer" % name


def agree_binary(doc, expected, positive):
    return fm.check_v2_binary(doc, expected, positive)


def check_serving(C, s, cases, tag):
    for c in cases:
        d = c.inspect
        meta = s.get("/v2/models/" + c.name).json()
        cols = meta["inputs"]
        n = len(c.rows)
        r = s.post(infer_path(c.name), {"inputs": fm.v2_inputs(cols, c.rows)})
        doc = r.json() if r.status == 200 else {}
        if d["task"] == "binary":
            why = agree_binary(doc, c.pred, d["positive_class"]) if doc else r
        elif d["task"] == "multiclass":
            p = fm.output(doc, "probability") or {}
            K = len(d["classes"])
            data = p.get("data", [])
            why = None if len(data) == n * K and all(
                abs(data[i * K + k] - e["p_" + cls]) <= TOL
                for i, e in enumerate(c.pred) for k, cls in enumerate(d["classes"])) else doc
        else:
            p = fm.output(doc, "prediction") or {}
            data = p.get("data", [])
            why = None if len(data) == n and all(
                abs(a - e["prediction"]) <= TOL * max(1.0, abs(e["prediction"]))
                for a, e in zip(data, c.pred)) else doc
        C.check(why is None, "%s: V2 infer of %d rows of %s equals finmaas predict" %
                (tag, n, c.name), str(why)[:500])

        inst = [fm.tf_instance(cols, x) for x in c.rows[:50]]
        r = s.post("/v1/models/%s:predict" % c.name, {"instances": inst})
        preds = r.json().get("predictions", []) if r.status == 200 else []
        ok = len(preds) == len(inst)
        for pr, e in zip(preds, c.pred):
            if d["task"] == "binary":
                ok = ok and fm.close_to(pr["probability"], e["p_" + d["positive_class"]]) and \
                    pr["label"] == e["label"]
            elif d["task"] == "multiclass":
                ok = ok and pr["label"] == e["label"] and all(
                    fm.close_to(pr["probability"][k], e["p_" + cls])
                    for k, cls in enumerate(d["classes"]))
            else:
                ok = ok and abs(pr - e["prediction"]) <= TOL * max(1.0, abs(e["prediction"]))
        C.check(ok, "%s: TF predict of 50 rows of %s equals finmaas predict" % (tag, c.name),
                str(r)[:300])

    # Single rows from 6 threads at once on the binary models (batched when batching is on).
    binaries = [c for c in cases if c.inspect["task"] == "binary"]
    metas = {c.name: s.get("/v2/models/" + c.name).json()["inputs"] for c in binaries}

    def worker(k):
        client = fm.Client(s)
        try:
            for c in binaries:
                pos = c.inspect["positive_class"]
                for i in range(k, min(len(c.rows), 120), 6):
                    body = json.dumps({"inputs": fm.v2_inputs(metas[c.name], [c.rows[i]])})
                    r = client.post(infer_path(c.name), body.encode())
                    why = agree_binary(r.json(), [c.pred[i]], pos) if r.status == 200 else r
                    if why:
                        raise AssertionError("%s row %d: %s" % (c.name, i, why))
        finally:
            client.close()

    errors = fm.run_threads(6, worker)
    C.check(not errors, "%s: single-row V2 requests from 6 threads equal finmaas predict" % tag,
            errors[:1])


def t_serve(C, w, cases):
    home = w.join("home")
    for c in cases:
        C.equal(fm.registry_add(home, c.name, c.model), 1, "registered %s" % c.name)
    for tag, args in (("inline", []), ("batched", ["--batch-max-size", "32",
                                                   "--batch-max-delay-us", "2000"])):
        s = fm.Server(home, w.path, name="gbt-" + tag, args=args).start()
        try:
            check_serving(C, s, cases, tag)
            r = s.get("/v2/models/credit")
            C.check(r.status == 200 and r.json().get("parameters", {}).get("family") == "gbt",
                    "%s: V2 metadata says family gbt" % tag, r)
        finally:
            rc, took = s.stop()
        C.check(rc == 0, "%s: server exits 0 on SIGTERM" % tag, rc)
        C.check(not s.sanitizer_report(), "%s: no sanitizer report" % tag, s.stderr()[-3000:])


# ---- 3. quality ------------------------------------------------------------------------------


def holdout_auc(w, data, target, positive, name):
    """Test AUC of a gbt model trained on a stratified 70% (random_state=42)."""
    with open(data, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    y = [r[header.index(target)] for r in rows]
    train_rows, test_rows = train_test_split(rows, test_size=0.3, stratify=y, random_state=42)
    tr = fm.write_csv(w.join(name + "_train.csv"), header, train_rows)
    te = fm.write_csv(w.join(name + "_test.csv"), header, test_rows)
    model = w.join(name + "_holdout.fmm")
    train(tr, target, model, "--positive", positive)
    pred = fm.predict(model, te)
    truth = [1 if r[header.index(target)] == positive else 0 for r in test_rows]
    return roc_auc_score(truth, [p["p_" + positive] for p in pred]), len(test_rows)


def t_quality(C, w):
    auc, n = holdout_auc(w, CREDIT, "Status", "bad", "credit")
    C.check(auc >= 0.84, "credit_data: test AUC %.4f >= 0.84 on the %d-row stratified 30%% "
            "holdout" % (auc, n), auc)
    auc, n = holdout_auc(w, CREDIT_G, "class", "bad", "credit_g")
    C.check(auc >= 0.75, "credit-g: test AUC %.4f >= 0.75 on the %d-row stratified 30%% holdout"
            % (auc, n), auc)


def sections(C, w):
    cases = [
        make_case(w, "credit", CREDIT, "Status", ["--positive", "bad"]),
        make_case(w, "creditg", CREDIT_G, "class", ["--positive", "bad", "--threads", "2"]),
        make_case(w, "marital", CREDIT, "Marital", ["--drop", "Status", "--rounds", "80"],
                  nrows=600),
        make_case(w, "amount", CREDIT, "Amount", ["--rounds", "120"], nrows=600),
    ]
    C.section("the booster in the .fmm against xgboost", t_against_xgboost, C, cases)
    C.section("inspect and the train summary", t_describe, C, cases)
    C.section("determinism", t_deterministic, C, w)
    C.section("gbt flags", t_options, C, w)
    C.section("serving", t_serve, C, w, cases)
    C.section("quality on a stratified holdout", t_quality, C, w)


def main():
    return fm.run_main("gradient-boosted trees: CLI, xgboost, serving, quality", "fm-gbt-",
                       sections)


if __name__ == "__main__":
    sys.exit(main())
