"""Reference test of per-decision explanations (src/explain) against independent computations.

Models are trained on ../shared/data/credit_data.csv with `finmaas train`; the tool
explain_rows (tests/tools/explain_rows.c) stores the baselines with fm_explain_fit on the
encoded rows and prints each row's encoded values, attributions, score and baseline score. Here:
1. completeness, sum phi = score - baseline_score within 1e-4, for logistic, linear regression,
   softmax, mlp relu, mlp tanh, gbt binary / multiclass / regression, an imported Keras model
   and Shapley, against both baselines;
2. one-layer networks: phi equals beta_j (x_j - E[x_j]) summed per feature, with beta read from the
   .fmm file's tensors and E[x] (population) or the reference group's mean computed in NumPy;
3. trees: phi equals the xgboost package's pred_contribs on the same booster (the .fmm's
   "gbt.booster" bytes) summed per feature, minus the reference group's mean;
4. Integrated Gradients on relu and tanh MLPs equals a NumPy IG with 20,000 midpoint steps
   within 1e-3;
5. exact Shapley equals a brute-force NumPy computation over all coalitions;
6. reason codes: the k most decline-ward features, strictly toward decline, configured and
   default texts, the other direction when approval is the negative class;
7. a malformed stored member gives EFORMAT, bad requests and settings give EINVAL.

Run: FINMAAS=build/finmaas FM_TOOLS=build/tests FM_SHARED=../shared python3 tests/ref/test_explain.py
"""
import itertools
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmref  # noqa: E402

TOOL = os.path.join(fmref.TOOLS, "explain_rows")
DATA = os.path.join(fmref.SHARED, "data", "credit_data.csv")
CREDIT_G = os.path.join(fmref.SHARED, "data", "credit-g.csv")
check = fmref.check


def read_fmm(path):
    """The safetensors layout: 8-byte little-endian header length, JSON header, tensor bytes."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["finmaas"])
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        raw = blob[8 + n + a:8 + n + b]
        if t["dtype"] == "F64":
            tensors[name] = np.frombuffer(raw, "<f8").reshape(t["shape"])
        else:
            tensors[name] = raw
    return meta, tensors


def explain(model, *args, data=DATA, expect_error=None):
    p = subprocess.run([TOOL, model, data, *map(str, args)], capture_output=True, text=True)
    if expect_error:
        ok = p.returncode == 3 and expect_error in p.stderr
        check(ok, "refused with %s: %s" % (expect_error, p.stderr.strip()[:160]))
        return None
    if p.returncode != 0:
        sys.exit("explain_rows %s %s failed: %s" % (model, " ".join(map(str, args)), p.stderr))
    return json.loads(p.stdout)


def train(w, name, *args, data=DATA, target="Status"):
    out = os.path.join(w, name + ".fmm")
    fmref.run("train", "--data", data, "--target", target, "--out", out, "--quiet", *args)
    return out


def blocks(doc):
    return [(c["offset"], c["width"]) for c in doc["columns"]]


def per_column(doc, enc):
    """Sums encoded attributions enc[..., nf] per prep column."""
    return np.stack([enc[..., o:o + wd].sum(axis=-1) for o, wd in blocks(doc)], axis=-1)


def arrays(doc):
    rows = doc["rows"]
    return (np.array([r["x"] for r in rows]), np.array([r["phi"] for r in rows]),
            np.array([r["score"] for r in rows]), np.array([r["baseline_score"] for r in rows]))


def completeness(doc, label):
    _, phi, score, base = arrays(doc)
    worst = float(np.abs(phi.sum(axis=1) - (score - base)).max())
    check(worst <= 1e-4, "%s: completeness, max |sum phi - (f(x) - f(b))| = %.3g" % (label, worst))


def network(meta, tensors):
    layers = []
    for l in itertools.count():
        if "layers.%d.weight" % l not in tensors:
            break
        layers.append((tensors["layers.%d.weight" % l], tensors["layers.%d.bias" % l]))
    return layers


def hidden_fn(name):
    return {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
            "identity": lambda z: z, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[name]


def net_logits(layers, hidden, x):
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = hidden(h)
    return h


def net_grad(layers, hidden_name, x, k):
    """d logit_k / dx at rows x, by hand-written backpropagation."""
    acts, pres, h = [x], [], x
    for i, (w, b) in enumerate(layers):
        z = h @ w + b
        pres.append(z)
        h = hidden_fn(hidden_name)(z) if i < len(layers) - 1 else z
        acts.append(h)
    d = np.zeros_like(pres[-1])
    d[:, k] = 1.0
    for i in range(len(layers) - 1, -1, -1):
        if i < len(layers) - 1:
            z = pres[i]
            if hidden_name == "relu":
                d = d * (z > 0)
            elif hidden_name == "tanh":
                d = d * (1 - np.tanh(z) ** 2)
            elif hidden_name == "sigmoid":
                s = 1 / (1 + np.exp(-z))
                d = d * s * (1 - s)
        d = d @ layers[i][0].T
    return d


def reference_group(p_approve, cutoff=0.5, band=0.1):
    idx = np.where((p_approve >= cutoff) & (p_approve < cutoff + band))[0]
    if len(idx) >= 20:
        return idx
    approved = np.where(p_approve >= cutoff)[0]
    order = approved[np.argsort(p_approve[approved], kind="stable")]
    return order[:20] if len(order) else np.arange(len(p_approve))


def t_linear(w, xall):
    # Logistic regression: both baselines from the NumPy mean rows.
    model = train(w, "logistic", "--model", "logistic", "--epochs", "40")
    meta, tensors = read_fmm(model)
    (wt, b), = network(meta, tensors)
    x_pop = xall.mean(axis=0)
    p = 1 / (1 + np.exp(-(xall @ wt + b)[:, 0]))
    x_ref = xall[reference_group(p)].mean(axis=0)
    for baseline, base_row in (("population", x_pop), ("reference", x_ref)):
        doc = explain(model, "--fit", "--rows", 300, "--baseline", baseline)
        x, phi, score, base = arrays(doc)
        want = per_column(doc, wt[:, 0] * (x - base_row))
        worst = float(np.abs(phi - want).max())
        check(worst <= 1e-9 and doc["method"] == "linear",
              "logistic (%s): phi = beta (x - E[x]) from the .fmm weights, max diff %.3g"
              % (baseline, worst))
        s_worst = float(np.abs(score - (x @ wt + b)[:, 0]).max())
        b_worst = float(np.abs(base - (base_row @ wt + b)[0]).max())
        check(s_worst <= 1e-9 and b_worst <= 1e-9,
              "logistic (%s): score and baseline score are x.beta + b (%.3g, %.3g)"
              % (baseline, s_worst, b_worst))
        completeness(doc, "logistic (%s)" % baseline)
    return model, doc


def t_regression_and_softmax(w, xall_of):
    model = train(w, "linreg", "--model", "linear", "--task", "regression", "--epochs", "40",
                  target="Price")
    meta, tensors = read_fmm(model)
    (wt, b), = network(meta, tensors)
    mean, std = meta["target_scaling"]["mean"], meta["target_scaling"]["std"]
    doc = explain(model, "--fit", "--rows", 300, "--baseline", "population")
    x, phi, score, base = arrays(doc)
    xa = xall_of(model)
    want_score = mean + std * (x @ wt + b)[:, 0]
    want = per_column(doc, std * wt[:, 0] * (x - xa.mean(axis=0)))
    check(float(np.abs(phi - want).max()) <= 1e-6 * max(1, std) and
          float(np.abs(score - want_score).max()) <= 1e-6 * max(1, std),
          "linear regression: phi = std * beta (x - E[x]), score = mean + std * (x.beta + b)")
    completeness(doc, "linear regression")

    model = train(w, "softmax", "--model", "softmax", "--task", "multiclass", "--epochs", "30",
                  target="Home")
    meta, tensors = read_fmm(model)
    (wt, b), = network(meta, tensors)
    xa = xall_of(model)
    doc = explain(model, "--fit", "--rows", 300, "--baseline", "population")
    x, phi, score, base = arrays(doc)
    logits = x @ wt + b
    k = logits.argmax(axis=1)
    out = np.array([r["output"] for r in doc["rows"]])
    want = per_column(doc, wt[:, k].T * (x - xa.mean(axis=0)))
    check((out == k).all() and float(np.abs(phi - want).max()) <= 1e-9 and
          float(np.abs(score - logits[np.arange(len(k)), k]).max()) <= 1e-9,
          "softmax: the predicted class's logit, phi = beta_k (x - E[x])")
    completeness(doc, "softmax")
    doc = explain(model, "--fit", "--rows", 50, "--output", 2)
    check(all(r["output"] == 2 for r in doc["rows"]) and
          all(r["json"]["output"] == meta["classes"][2] for r in doc["rows"]),
          "softmax: --output 2 explains class 2 and names it")
    completeness(doc, "softmax, class 2")
    explain(model, "--fit", "--rows", 5, "--output", len(meta["classes"]), expect_error="EINVAL")


def load_booster(model):
    import xgboost as xgb
    _, tensors = read_fmm(model)
    bst = xgb.Booster()
    bst.load_model(bytearray(tensors["gbt.booster"]))
    return xgb, bst


def t_trees(w, xall_of):
    model = train(w, "gbt", "--model", "gbt", "--rounds", "60")
    xgb, bst = load_booster(model)
    xa = xall_of(model)
    p = bst.predict(xgb.DMatrix(xa))
    group = reference_group(p)
    group_mean = bst.predict(xgb.DMatrix(xa[group]), pred_contribs=True).mean(axis=0)
    for baseline in ("population", "reference"):
        doc = explain(model, "--fit", "--rows", 300, "--baseline", baseline, "--contribs")
        x, phi, score, base = arrays(doc)
        c = bst.predict(xgb.DMatrix(x), pred_contribs=True)
        mine = np.array([r["contribs"] for r in doc["rows"]])
        worst_raw = float(np.abs(mine - c).max())
        want = per_column(doc, c[:, :-1])
        want_base = c[:, -1]
        if baseline == "reference":
            want = want - per_column(doc, group_mean[:-1])
            want_base = np.full(len(x), group_mean.sum())
        worst = float(np.abs(phi - want).max())
        check(worst_raw <= 1e-6 and worst <= 1e-5 and doc["method"] == "treeshap",
              "gbt binary (%s): TreeSHAP = xgboost pred_contribs per feature (raw %.3g, "
              "per feature %.3g)" % (baseline, worst_raw, worst))
        margin = bst.predict(xgb.DMatrix(x), output_margin=True)
        check(float(np.abs(score - margin).max()) <= 1e-4 and
              float(np.abs(base - want_base).max()) <= 1e-5,
              "gbt binary (%s): score is the margin, baseline the %s" %
              (baseline, "bias" if baseline == "population" else "group's mean margin"))
        completeness(doc, "gbt binary (%s)" % baseline)

    model = train(w, "gbt_multi", "--model", "gbt", "--task", "multiclass", "--rounds", "20",
                  target="Home")
    xgb, bst = load_booster(model)
    doc = explain(model, "--fit", "--rows", 200, "--baseline", "population")
    x, phi, score, base = arrays(doc)
    c = bst.predict(xgb.DMatrix(x), pred_contribs=True)  # (n, classes, nf + 1)
    k = bst.predict(xgb.DMatrix(x), output_margin=True).argmax(axis=1)
    want = per_column(doc, c[np.arange(len(k)), k, :-1])
    out = np.array([r["output"] for r in doc["rows"]])
    check((out == k).all() and float(np.abs(phi - want).max()) <= 1e-5,
          "gbt multiclass: the predicted class's pred_contribs per feature")
    completeness(doc, "gbt multiclass")
    completeness(explain(model, "--fit", "--rows", 100), "gbt multiclass (reference)")

    model = train(w, "gbt_reg", "--model", "gbt", "--task", "regression", "--rounds", "40",
                  target="Price")
    xgb, bst = load_booster(model)
    doc = explain(model, "--fit", "--rows", 200, "--baseline", "population")
    x, phi, score, base = arrays(doc)
    c = bst.predict(xgb.DMatrix(x), pred_contribs=True)
    check(float(np.abs(phi - per_column(doc, c[:, :-1])).max()) <= 1e-3 and
          float(np.abs(score - bst.predict(xgb.DMatrix(x))).max()) <= 1e-2,
          "gbt regression: pred_contribs per feature, score the predicted value")
    completeness(doc, "gbt regression")
    completeness(explain(model, "--fit", "--rows", 100), "gbt regression (reference)")
    return model


def numpy_ig(layers, hidden_name, x, b, k, steps=20000):
    alphas = (np.arange(steps) + 0.5) / steps
    out = np.empty_like(x)
    for i in range(len(x)):
        pts = b + alphas[:, None] * (x[i] - b)
        out[i] = (x[i] - b) * net_grad(layers, hidden_name, pts, k).mean(axis=0)
    return out


def t_mlp(w, xall_of):
    for act in ("relu", "tanh"):
        model = train(w, "mlp_" + act, "--model", "mlp", "--hidden", "16,8", "--activation", act,
                      "--epochs", "25")
        meta, tensors = read_fmm(model)
        layers = network(meta, tensors)
        xa = xall_of(model)
        p = 1 / (1 + np.exp(-net_logits(layers, hidden_fn(act), xa)[:, 0]))
        x_ref = xa[reference_group(p)].mean(axis=0)
        doc = explain(model, "--fit", "--rows", 20)
        stored = np.array(doc["explain"]["reference"]["row"])
        check(float(np.abs(stored - x_ref).max()) <= 1e-9,
              "mlp %s: the stored reference row is the NumPy group's mean row" % act)
        x, phi, score, base = arrays(doc)
        want = per_column(doc, numpy_ig(layers, act, x, x_ref, 0))
        worst = float(np.abs(phi - want).max())
        check(worst <= 1e-3 and doc["method"] == "integrated_gradients",
              "mlp %s: IG = NumPy IG with 20,000 steps, max diff %.3g (finmaas: %s %s)" %
              (act, worst, "pieces" if act == "relu" else "nodes",
               sorted(set(r["steps"] for r in doc["rows"]))))
        check(float(np.abs(score - net_logits(layers, hidden_fn(act), x)[:, 0]).max()) <= 1e-9,
              "mlp %s: score is the logit" % act)
        completeness(doc, "mlp %s" % act)
        completeness(explain(model, "--fit", "--rows", 200, "--baseline", "population"),
                     "mlp %s (population)" % act)
        if act == "tanh":
            doc = explain(model, "--fit", "--rows", 50, "--steps", 120)
            check(all(r["steps"] == 120 for r in doc["rows"]), "mlp tanh: --steps 120 uses 120 nodes")
            completeness(doc, "mlp tanh, 120 nodes")
        else:
            relu_model = model
    return relu_model


def brute_shapley(value, m):
    """Shapley values of the m-player game value(mask) by the subset formula."""
    v = np.array([value(mask) for mask in range(1 << m)])
    phi = np.zeros(m)
    for i in range(m):
        for mask in range(1 << m):
            if mask >> i & 1:
                continue
            s = bin(mask).count("1")
            wgt = math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
            phi[i] += wgt * (v[mask | 1 << i] - v[mask])
    return phi


def coalition_rows(doc, x, b):
    cols = [(o, wd) for o, wd in blocks(doc) if wd > 0]
    m = len(cols)
    rows = np.tile(b, (1 << m, 1))
    for mask in range(1 << m):
        for f, (o, wd) in enumerate(cols):
            if mask >> f & 1:
                rows[mask, o:o + wd] = x[o:o + wd]
    return rows, m


def t_shapley(w, mlp_model, gbt_model):
    meta, tensors = read_fmm(mlp_model)
    layers = network(meta, tensors)
    doc = explain(mlp_model, "--fit", "--rows", 3, "--method", "shapley")
    b = np.array(doc["explain"]["reference"]["row"])
    worst = 0.0
    for r in doc["rows"]:
        rows, m = coalition_rows(doc, np.array(r["x"]), b)
        v = net_logits(layers, hidden_fn("relu"), rows)[:, 0]
        want = brute_shapley(lambda mask: v[mask], m)
        worst = max(worst, float(np.abs(np.array(r["phi"]) - want).max()))
    check(worst <= 1e-9 and doc["rows"][0]["method"] == "shapley",
          "shapley (mlp): exact values = brute force over %d coalitions, max diff %.3g"
          % (1 << m, worst))
    completeness(doc, "shapley (mlp)")
    doc = explain(mlp_model, "--fit", "--fit-method", "shapley", "--rows", 2)
    check(doc["method"] == "shapley" and doc["rows"][0]["method"] == "shapley",
          "shapley stored as the model's method is used by default")

    xgb, bst = load_booster(gbt_model)
    doc = explain(gbt_model, "--fit", "--rows", 2, "--method", "shapley", "--baseline",
                  "population")
    b = np.array(doc["explain"]["population"]["row"])
    worst = 0.0
    for r in doc["rows"]:
        rows, m = coalition_rows(doc, np.array(r["x"]), b)
        v = bst.predict(xgb.DMatrix(rows), output_margin=True)
        want = brute_shapley(lambda mask: float(v[mask]), m)
        worst = max(worst, float(np.abs(np.array(r["phi"]) - want).max()))
    check(worst <= 1e-5, "shapley (gbt): exact values over xgboost margins, max diff %.3g" % worst)
    completeness(doc, "shapley (gbt)")


def t_keras(w):
    import test_keras_import as tk  # its helpers read the churn data the way that test does
    names, mean, scale = tk.churn_scaler()
    rows, x = tk.churn_rows(names)
    data = os.path.join(w, "churn.csv")
    with open(data, "w") as f:
        f.write(",".join(names + ["Exited"]) + "\n")
        for r in rows[:2000]:
            f.write(",".join([r[n] for n in names] + [r["Exited"]]) + "\n")
    model = os.path.join(w, "churn.fmm")
    fmref.run("import-keras", tk.CHURN_H5, "--out", model, "--feature-names", ",".join(names),
              "--scaler-mean", ",".join(map(repr, mean)),
              "--scaler-scale", ",".join(map(repr, scale)), "--classes", "stay,exited",
              "--target", "Exited")
    doc = explain(model, "--rows", 200, data=data)
    check(doc["explain"] is None and doc["method"] == "integrated_gradients",
          "keras: an imported model explains without a stored member (IG)")
    completeness(doc, "keras churn 12-64-32-1 relu (centre baseline)")
    doc = explain(model, "--fit", "--rows", 200, data=data)
    completeness(doc, "keras churn (fitted reference)")
    meta, tensors = read_fmm(model)
    layers = network(meta, tensors)
    x, phi, _, _ = arrays(doc)
    b = np.array(doc["explain"]["reference"]["row"])
    want = per_column(doc, numpy_ig(layers, "relu", x[:10], b, 0))
    worst = float(np.abs(phi[:10] - want).max())
    check(worst <= 1e-3, "keras: IG = NumPy IG with 20,000 steps, max diff %.3g" % worst)


def t_reasons(w, model):
    texts = os.path.join(w, "reasons.json")
    with open(texts, "w") as f:
        json.dump({"Income": "Income is low for the amount asked", "Records": "Credit records"}, f)
    for k in (2, 4):
        doc = explain(model, "--fit", "--rows", 200, "--reasons", texts, "--k", k)
        ok = True
        names = [c["name"] for c in doc["columns"]]
        for r in doc["rows"]:
            phi = np.array(r["phi"])
            neg = [i for i in np.argsort(phi, kind="stable") if phi[i] < 0][:k]
            got = r["json"]["reasons"]
            want = [names[i] for i in neg]
            ok &= [g["feature"] for g in got] == want
            ok &= all(g["contribution"] < 0 for g in got)
            for g in got:
                ok &= g["text"] == {"Income": "Income is low for the amount asked",
                                    "Records": "Credit records"}.get(
                                        g["feature"], g["feature"] + ": value weighs against approval")
            ok &= list(r["json"]["attributions"]) == [n for n, c in zip(names, doc["columns"])
                                                      if c["width"] > 0]
        check(ok, "reasons (k=%d): the k most negative attributions, strictly negative, "
                  "configured and default texts" % k)
    doc = explain(model, "--fit", "--rows", 100, "--approve", "bad")
    ok = doc["approve"] == 0
    for r in doc["rows"]:
        got = r["json"]["reasons"]
        ok &= all(g["contribution"] > 0 for g in got)
        ok &= [g["contribution"] for g in got] == sorted([g["contribution"] for g in got],
                                                           reverse=True)
        ok &= len(got) == min(4, sum(1 for v in r["phi"] if v > 0))
    check(ok, "reasons with approve = the negative class: positive attributions decline")


def t_errors(w, model, gbt_model, xall_of):
    good = explain(model, "--fit", "--rows", 1)["explain"]
    nf = len(good["population"]["row"])

    def member(change):
        m = json.loads(json.dumps(good))
        change(m)
        path = os.path.join(w, "member.json")
        with open(path, "w") as f:
            json.dump(m, f)
        return path

    bad = {
        "short row": lambda m: m["reference"].__setitem__("row", m["reference"]["row"][:-1]),
        "text in a row": lambda m: m["population"]["row"].__setitem__(0, "x"),
        "no population": lambda m: m.pop("population"),
        "steps 0": lambda m: m.__setitem__("steps", 0),
        "unknown method": lambda m: m.__setitem__("method", "magic"),
        "approve not a class": lambda m: m.__setitem__("approve", "maybe"),
        "cutoff 2": lambda m: m.__setitem__("cutoff", 2),
        "reason for unknown feature": lambda m: m["reasons"].__setitem__("Nope", "x"),
        "rows 0": lambda m: m["population"].__setitem__("rows", 0),
    }
    for what, change in bad.items():
        print("  malformed member: " + what)
        explain(model, "--member", member(change), "--rows", 1, expect_error="EFORMAT")
    path = os.path.join(w, "notobject.json")
    with open(path, "w") as f:
        f.write("[1, 2]")
    explain(model, "--member", path, "--rows", 1, expect_error="EFORMAT")
    gbt_member = explain(gbt_model, "--fit", "--rows", 1)["explain"]
    gbt_member["reference"]["phi"] = gbt_member["reference"]["phi"][:-2]
    path = os.path.join(w, "gbt_member.json")
    with open(path, "w") as f:
        json.dump(gbt_member, f)
    explain(gbt_model, "--member", path, "--rows", 1, expect_error="EFORMAT")

    explain(model, "--fit", "--rows", 1, "--method", "treeshap", expect_error="EINVAL")
    explain(model, "--fit", "--rows", 1, "--steps", 10001, expect_error="EINVAL")
    explain(model, "--fit", "--rows", 1, "--baseline", "median", expect_error="EINVAL")
    explain(gbt_model, "--fit", "--rows", 1, "--method", "integrated_gradients",
            expect_error="EINVAL")
    explain(gbt_model, "--fit", "--rows", 1, "--method", "linear", expect_error="EINVAL")
    explain(model, "--fit", "--cutoff", "1.5", expect_error="EINVAL")
    explain(model, "--fit", "--band", "0", expect_error="EINVAL")
    explain(model, "--fit", "--approve", "excellent", expect_error="EINVAL")
    explain(model, "--fit", "--fit-steps", "0", expect_error="EINVAL")
    long_text = os.path.join(w, "long.json")
    with open(long_text, "w") as f:
        json.dump({"Income": "x" * 201}, f)
    explain(model, "--fit", "--reasons", long_text, expect_error="EINVAL")
    with open(long_text, "w") as f:
        json.dump({"Salary": "x"}, f)
    explain(model, "--fit", "--reasons", long_text, expect_error="EINVAL")
    # credit-g has 20 features: more than exact Shapley allows.
    wide = train(w, "wide", "--model", "logistic", "--epochs", "5", data=CREDIT_G, target="class")
    explain(wide, "--fit", "--rows", 1, "--method", "shapley", data=CREDIT_G,
            expect_error="EINVAL")
    explain(wide, "--fit", "--fit-method", "shapley", data=CREDIT_G, expect_error="EINVAL")


def main():
    w = tempfile.mkdtemp(prefix="fm_explain_")
    cache = {}

    def xall_of(model):
        if model not in cache:
            cache[model] = arrays(explain(model, "--rows", 10 ** 9))[0]
        return cache[model]

    logistic, _ = t_linear(w, xall_of(train(w, "probe", "--model", "logistic", "--epochs", "1")))
    t_regression_and_softmax(w, xall_of)
    gbt = t_trees(w, xall_of)
    gbt = train(w, "gbt_small", "--model", "gbt", "--rounds", "30")
    relu = t_mlp(w, xall_of)
    t_shapley(w, relu, gbt)
    t_keras(w)
    t_reasons(w, logistic)
    t_errors(w, logistic, gbt, xall_of)
    fmref.finish()


if __name__ == "__main__":
    main()
