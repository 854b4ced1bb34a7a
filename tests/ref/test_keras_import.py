"""Reference test of `finmaas import-keras`: imported Keras models predict what Keras would.

1. The real Keras 2.15 model ../shared/models/keras/churn_model.h5 is imported with the inputs and
   the StandardScaler documented in ../shared/data/README.md (read from that file), all 10,000
   rows of Churn_Modelling.csv are scored with `finmaas predict`, and the probabilities are
   compared with a NumPy forward pass (float64) of the same weights read here with h5py, walking
   the file's own model_config, layer_names and weight_names. finmaas predicts in float32; the
   largest difference must be <= 1e-5 and is printed.
2. Small files in the Keras layout are written here with h5py (a softmax classifier with tanh,
   a layer without bias, Dropout and an Activation layer, text attributes as fixed-length bytes
   the way older Keras wrote them, float32 and float64 weights; a Functional regression chain)
   and checked the same way.
3. Files finmaas must refuse (an unsupported layer, an unsupported activation, a kernel of the
   wrong shape, no model_config, a truncated file, a CSV file, options that do not fit): exit
   status 2, one line on stderr naming the problem, and no model file left behind.
4. The imported churn model is added to a registry home and served; V2 and TF Serving answers
   must equal `finmaas predict` (tests/integration/fmserve.py starts the server with API keys).

Run: FINMAAS=build/finmaas FM_SHARED=../shared /usr/bin/python3 tests/ref/test_keras_import.py
"""
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import fmserve as fm  # noqa: E402

FINMAAS = os.environ.get("FINMAAS", os.path.join(ROOT, "build", "finmaas"))
SHARED = os.environ.get("FM_SHARED", os.path.join(ROOT, "..", "shared"))
KERAS_DIR = os.path.join(SHARED, "models", "keras")
CHURN_H5 = os.path.join(KERAS_DIR, "churn_model.h5")
CHURN_CSV = os.path.join(KERAS_DIR, "Churn_Modelling.csv")
TOLERANCE = 1e-5

failures = []


def check(cond, message, detail=""):
    print(("ok   " if cond else "FAIL ") + message + ("" if cond or not detail else ": %s" % detail),
          flush=True)
    if not cond:
        failures.append(message)
    return cond


def run(*args):
    """Runs finmaas; returns (status, stdout, stderr)."""
    p = subprocess.run([FINMAAS, *map(str, args)], capture_output=True, text=True, timeout=600,
                       env=fm.cli_env())
    for marker in fm.SANITIZER_MARKERS:
        if marker in p.stderr:
            sys.exit("finmaas %s: sanitizer report: %s" % (args[0], p.stderr))
    return p.returncode, p.stdout, p.stderr


def finmaas(*args):
    rc, out, err = run(*args)
    if rc != 0:
        sys.exit("finmaas %s exited %d: %s" % (" ".join(map(str, args)), rc, err))
    return out


# ---- The reference: a NumPy forward pass of a Keras HDF5 file --------------------------------


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def activation(z, name):
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def keras_layers(config):
    """The layer configs in data-flow order (Sequential list; a Functional chain is walked)."""
    cfg = config["config"]
    if config["class_name"] == "Sequential":
        return cfg["layers"] if isinstance(cfg, dict) else cfg
    by_name = {layer["name"]: layer for layer in cfg["layers"]}
    chain, at = [], cfg["output_layers"][0][0]
    while at is not None:
        layer = by_name[at]
        chain.append(layer)
        nodes = layer.get("inbound_nodes") or []
        at = nodes[0][0][0] if nodes else None
    return list(reversed(chain))


def keras_forward(path, x):
    """Keras's output for x (float64), from the file's config and weights as h5py reads them."""
    with h5py.File(path, "r") as f:
        config = json.loads(text(f.attrs["model_config"]))
        weights = f["model_weights"] if "model_weights" in f else f
        names = [text(n) for n in weights.attrs["layer_names"]]
        a = np.asarray(x, dtype=np.float64)
        for layer in keras_layers(config):
            cls, cfg = layer["class_name"], layer["config"]
            if cls == "Dense":
                assert cfg["name"] in names
                g = weights[cfg["name"]]
                wn = [text(n) for n in g.attrs["weight_names"]]
                a = a @ np.asarray(g[wn[0]], dtype=np.float64)
                if cfg.get("use_bias", True):
                    a = a + np.asarray(g[wn[1]], dtype=np.float64)
                a = activation(a, cfg.get("activation") or "linear")
            elif cls == "Activation":
                a = activation(a, cfg["activation"])
            elif cls not in ("InputLayer", "Dropout"):
                raise ValueError(cls)
        return a


# ---- Churn -----------------------------------------------------------------------------------


def churn_scaler():
    """The feature order and scaler stated in ../shared/data/README.md."""
    with open(os.path.join(SHARED, "data", "README.md")) as f:
        readme = f.read()
    order = re.search(r"expects its 12 inputs, in this order: (.*?), each then standardised",
                      readme, re.S).group(1)
    order = " ".join(order.split())
    mean = json.loads(re.search(r"mean\s*=\s*(\[[^\]]*\])", readme).group(1))
    scale = json.loads(re.search(r"scale\s*=\s*(\[[^\]]*\])", readme).group(1))
    # "CreditScore, Gender (Female=0, Male=1), Age, ..., Geography_France, ... (one-hot)"
    names = [re.sub(r"\s*\(.*$", "", part).strip()
             for part in re.split(r",\s*(?![^()]*\))", order)]
    assert len(names) == 12 and len(mean) == 12 and len(scale) == 12, (names, mean, scale)
    return names, mean, scale


def churn_rows(names):
    """The 12 model inputs of every row of Churn_Modelling.csv (Gender and Geography encoded as
    the README says), with RowNumber and Exited."""
    with open(CHURN_CSV, newline="") as f:
        raw = list(csv.DictReader(f))
    rows = []
    for r in raw:
        v = dict(r)
        v["Gender"] = {"Female": "0", "Male": "1"}[r["Gender"]]
        for g in ("France", "Germany", "Spain"):
            v["Geography_" + g] = "1" if r["Geography"] == g else "0"
        rows.append(v)
    x = np.array([[float(r[n]) for n in names] for r in rows])
    return rows, x


def predict_csv(model, data, column):
    out = finmaas("predict", "--model", model, "--data", data)
    r = list(csv.DictReader(out.splitlines()))
    return np.array([float(row[column]) for row in r]), r


def t_churn(w):
    names, mean, scale = churn_scaler()
    rows, x = churn_rows(names)
    check(len(rows) == 10000, "Churn_Modelling.csv has 10,000 rows", len(rows))
    data = os.path.join(w, "churn_inputs.csv")
    fm.write_csv(data, ["RowNumber"] + names + ["Exited"],
                 [[r["RowNumber"]] + [r[n] for n in names] + [r["Exited"]] for r in rows])
    model = os.path.join(w, "churn.fmm")
    out = finmaas("import-keras", CHURN_H5, "--out", model, "--feature-names", ",".join(names),
                  "--scaler-mean", ",".join(map(repr, mean)),
                  "--scaler-scale", ",".join(map(repr, scale)), "--classes", "stay,exited",
                  "--target", "Exited", "--pii", "Gender,Age")
    summary = json.loads(out)
    check(summary["task"] == "binary" and summary["sizes"] == [12, 64, 32, 1] and
          summary["hidden_activation"] == "relu" and summary["output_activation"] == "sigmoid",
          "churn: binary 12-64-32-1 relu/sigmoid network", summary)

    got, pred_rows = predict_csv(model, data, "p_exited")
    want = keras_forward(CHURN_H5, (x - np.array(mean)) / np.array(scale))[:, 0]
    diff = np.abs(got - want)
    worst = float(diff.max())
    print("  churn: max |finmaas - NumPy| over %d rows = %.3g (row %d)" %
          (len(got), worst, int(diff.argmax())), flush=True)
    check(len(got) == 10000 and worst <= TOLERANCE,
          "churn: all 10,000 probabilities within %g of the NumPy forward pass" % TOLERANCE, worst)
    labels = np.array([r["label"] for r in pred_rows])
    clear = np.abs(want - 0.5) > TOLERANCE
    check(np.all((labels == "exited")[clear] == (want >= 0.5)[clear]),
          "churn: labels are exited when p >= 0.5")
    exited = np.array([r["Exited"] == "1" for r in rows])
    print("  churn: accuracy on its own training data %.4f" % np.mean((got >= 0.5) == exited))

    d = json.loads(finmaas("inspect", model))
    src = d.get("source", {})
    with open(CHURN_H5, "rb") as f:
        blob = f.read()
    with h5py.File(CHURN_H5, "r") as f:
        version, backend = text(f.attrs["keras_version"]), text(f.attrs["backend"])
    check(src.get("sha256") == hashlib.sha256(blob).hexdigest() and
          src.get("blake2b") == hashlib.blake2b(blob, digest_size=32).hexdigest() and
          src.get("bytes") == len(blob) and src.get("file") == "churn_model.h5",
          "churn: the description records the file, its size, SHA-256 and BLAKE2b", src)
    check(src.get("keras_version") == version and src.get("backend") == backend,
          "churn: keras_version %s and backend %s recorded" % (version, backend), src)
    features = d.get("features", [])
    check([f["name"] for f in features] == names and
          [f["name"] for f in features if f.get("pii")] == ["Gender", "Age"],
          "churn: inputs named as given, Gender and Age marked PII", features)
    prep = d["preprocessing"]["columns"]
    check(all(abs(c["mean"] - m) < 1e-12 and abs(c["std"] - s) < 1e-12
              for c, m, s in zip(prep, mean, scale)),
          "churn: preprocessing holds the scaler's mean and scale")
    return model, data, names, rows, pred_rows


# ---- Small Keras-layout files written here ----------------------------------------------------


def layer(cls, **config):
    return {"class_name": cls, "config": config}


def write_keras(path, config, weights, fixed_text=False, dtypes=None):
    """A file in Keras 2's .h5 layout. weights: {layer: [arrays]} in layer order (every layer
    of layer_names; [] for layers without weights). fixed_text: layer_names and weight_names
    as NumPy bytes arrays (fixed-length strings), as Keras before 2.13 wrote them."""
    dtypes = dtypes or {}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.4.0"
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("model_weights")
        names = list(weights)
        g.attrs["layer_names"] = (np.array([n.encode() for n in names]) if fixed_text
                                  else names)
        for name, arrays in weights.items():
            lg = g.create_group(name)
            wn = ["%s/%s:0" % (name, "kernel" if i == 0 else "bias") for i in range(len(arrays))]
            if fixed_text and wn:
                lg.attrs["weight_names"] = np.array([n.encode() for n in wn])
            else:
                lg.attrs["weight_names"] = wn if wn else np.array([], dtype=np.float64)
            for n, a in zip(wn, arrays):
                lg.create_dataset(n, data=np.asarray(a, dtype=dtypes.get(name, np.float32)))
    return path


def tiny_multiclass(path, rng, fixed_text=True):
    config = {"class_name": "Sequential", "config": {"name": "tiny", "layers": [
        layer("InputLayer", batch_input_shape=[None, 5], dtype="float32", name="in"),
        layer("Dense", name="d1", units=6, activation="tanh", use_bias=True),
        layer("Dropout", name="drop", rate=0.3),
        layer("Dense", name="d2", units=4, activation="linear", use_bias=False),
        layer("Activation", name="act", activation="tanh"),
        layer("Dense", name="d3", units=3, activation="softmax", use_bias=True)]}}
    weights = {"d1": [rng.normal(0, 0.7, (5, 6)), rng.normal(0, 0.2, 6)], "drop": [],
               "d2": [rng.normal(0, 0.7, (6, 4))], "act": [],
               "d3": [rng.normal(0, 0.9, (4, 3)), rng.normal(0, 0.2, 3)]}
    return write_keras(path, config, weights, fixed_text=fixed_text,
                       dtypes={"d2": np.float64, "d3": np.float64})


def t_tiny(w):
    rng = np.random.default_rng(7)
    path = tiny_multiclass(os.path.join(w, "tiny.h5"), rng)
    x = np.round(rng.normal(0, 1.5, (500, 5)), 6)
    data = fm.write_csv(os.path.join(w, "tiny.csv"), list("abcde"), x.tolist())
    model = os.path.join(w, "tiny.fmm")
    finmaas("import-keras", path, "--out", model, "--feature-names", "a,b,c,d,e",
            "--classes", "low,mid,high")
    out = finmaas("predict", "--model", model, "--data", data)
    r = list(csv.DictReader(out.splitlines()))
    got = np.array([[float(row["p_" + c]) for c in ("low", "mid", "high")] for row in r])
    want = keras_forward(path, x)
    worst = float(np.abs(got - want).max())
    print("  tiny softmax: max |finmaas - NumPy| = %.3g" % worst)
    check(got.shape == (500, 3) and worst <= TOLERANCE,
          "tiny (tanh, no-bias layer, Dropout, Activation, softmax): within %g" % TOLERANCE, worst)
    labels = [row["label"] for row in r]
    check(labels == [("low", "mid", "high")[k] for k in want.argmax(axis=1)],
          "tiny: labels are the most probable class")

    # A Functional chain, float64 weights, relu hidden layers, a linear regression output.
    config = {"class_name": "Functional", "config": {
        "name": "reg", "input_layers": [["x", 0, 0]], "output_layers": [["y", 0, 0]],
        "layers": [
            {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 3], "name": "x"}},
            {"class_name": "Dense", "name": "h", "inbound_nodes": [[["x", 0, 0, {}]]],
             "config": {"name": "h", "units": 8, "activation": "relu"}},
            {"class_name": "Dropout", "name": "dr", "inbound_nodes": [[["h", 0, 0, {}]]],
             "config": {"name": "dr", "rate": 0.1}},
            {"class_name": "Dense", "name": "y", "inbound_nodes": [[["dr", 0, 0, {}]]],
             "config": {"name": "y", "units": 1, "activation": "linear"}}]}}
    weights = {"h": [rng.normal(0, 1, (3, 8)), rng.normal(0, 0.3, 8)], "dr": [],
               "y": [rng.normal(0, 1, (8, 1)), rng.normal(0, 0.3, 1)]}
    path = write_keras(os.path.join(w, "reg.h5"), config, weights,
                       dtypes={"h": np.float64, "y": np.float64})
    x = np.round(rng.normal(0, 2, (300, 3)), 6)
    data = fm.write_csv(os.path.join(w, "reg.csv"), ["x0", "x1", "x2"], x.tolist())
    model = os.path.join(w, "reg.fmm")
    summary = json.loads(finmaas("import-keras", path, "--out", model))
    got, _ = predict_csv(model, data, "prediction")
    want = keras_forward(path, x)[:, 0]
    worst = float(np.abs(got - want).max())
    print("  functional regression: max |finmaas - NumPy| = %.3g" % worst)
    check(summary["task"] == "regression" and worst <= TOLERANCE * max(1.0, np.abs(want).max()),
          "functional relu regression chain: within %g (relative to the output scale)" % TOLERANCE,
          worst)


# ---- Files finmaas refuses --------------------------------------------------------------------


def expect_refused(w, what, args, words):
    out = os.path.join(w, "refused.fmm")
    rc, stdout, stderr = run("import-keras", *args, "--out", out)
    lines = stderr.strip().splitlines()
    ok = (rc == 2 and len(lines) == 1 and lines[0].startswith("finmaas import-keras: ") and
          all(word in lines[0] for word in words) and not os.path.exists(out))
    check(ok, "refused, exit 2 with one line: %s" % what, "rc %d, stderr %r" % (rc, stderr))
    if ok:
        print("       " + lines[0])


def t_errors(w):
    rng = np.random.default_rng(3)

    def variant(name, edit=None, weights_edit=None):
        path = os.path.join(w, name + ".h5")
        tiny_multiclass(path, rng, fixed_text=False)
        with h5py.File(path, "r+") as f:
            if edit:
                config = json.loads(text(f.attrs["model_config"]))
                edit(config)
                f.attrs["model_config"] = json.dumps(config)
            if weights_edit:
                weights_edit(f)
        return path

    def conv(c):
        c["config"]["layers"][2] = layer("Conv1D", name="conv", filters=4, kernel_size=3)

    def selu(c):
        c["config"]["layers"][1]["config"]["activation"] = "selu"

    def units(c):
        c["config"]["layers"][3]["config"]["units"] = 5

    def no_config(f):
        del f.attrs["model_config"]

    expect_refused(w, "unsupported layer class", [variant("conv", conv)], ["'conv'", "Conv1D"])
    expect_refused(w, "unsupported activation", [variant("selu", selu)], ["'d1'", "selu"])
    expect_refused(w, "kernel of the wrong shape", [variant("units", units)],
                   ["'d2'", "[6, 4]", "[6, 5]"])
    expect_refused(w, "no model_config attribute", [variant("bare", weights_edit=no_config)],
                   ["model_config"])
    with open(CHURN_H5, "rb") as f:
        blob = f.read()
    cut = os.path.join(w, "cut.h5")
    with open(cut, "wb") as f:
        f.write(blob[:len(blob) // 2])
    expect_refused(w, "truncated file", [cut], ["cut.h5", "truncated"])
    expect_refused(w, "not an HDF5 file", [CHURN_CSV], ["not an HDF5 file"])
    expect_refused(w, "11 feature names for 12 inputs",
                   [CHURN_H5, "--feature-names", "a,b,c,d,e,f,g,h,i,j,k"],
                   ["11 feature names", "12 inputs"])
    expect_refused(w, "a scale of 0", [CHURN_H5, "--scaler-mean", ",".join(["0"] * 12),
                                       "--scaler-scale", ",".join(["1"] * 11 + ["0"])],
                   ["scale 12"])
    expect_refused(w, "3 class labels for a sigmoid output read as multiclass",
                   [CHURN_H5, "--task", "multiclass", "--classes", "a,b,c"],
                   ["3 class labels", "2 classes"])
    expect_refused(w, "regression asked of a softmax classifier",
                   [variant("reg"), "--task", "regression"], ["'d3'", "softmax"])
    expect_refused(w, "a missing file", [os.path.join(w, "none.h5")], ["none.h5"])


# ---- Serving ----------------------------------------------------------------------------------


def t_serving(w, model, names, rows, pred_rows):
    home = os.path.join(w, "home")
    version = fm.registry_add(home, "churn", model)
    check(version == 1, "models add: the imported model is version 1 of churn", version)
    server = fm.Server(home, w, name="keras").start()
    try:
        meta = server.get("/v2/models/churn")
        check(meta.status == 200, "GET /v2/models/churn: 200", meta)
        columns = meta.json()["inputs"]
        check([c["name"] for c in columns] == names, "V2 metadata lists the 12 named inputs",
              columns)
        sample = [dict(rows[i]) for i in range(0, 10000, 250)]
        expected = [pred_rows[i] for i in range(0, 10000, 250)]
        expected = [{"p_exited": float(e["p_exited"]), "label": e["label"]} for e in expected]
        r = server.post("/v2/models/churn/infer", {"inputs": fm.v2_inputs(columns, sample)})
        problem = fm.check_v2_binary(r.json(), expected, "exited") if r.status == 200 else r
        check(problem is None, "V2 infer on 40 rows equals finmaas predict", problem)
        r = server.post("/v1/models/churn:predict",
                        {"instances": [fm.tf_instance(columns, x) for x in sample[:10]]})
        preds = r.json().get("predictions", []) if r.status == 200 else []
        check(len(preds) == 10 and all(
            fm.close_to(p["probability"], e["p_exited"]) and p["label"] == e["label"]
            for p, e in zip(preds, expected)), "TF Serving predict equals finmaas predict", r)
    finally:
        rc, _ = server.stop()
    check(rc == 0 and not server.sanitizer_report(), "server exits 0 without sanitizer reports",
          server.stderr()[-2000:])


def main():
    if not os.access(FINMAAS, os.X_OK):
        sys.exit("FINMAAS must name the finmaas executable (got %r)" % FINMAAS)
    fm.FINMAAS = FINMAAS
    w = tempfile.mkdtemp(prefix="fm_keras_")
    try:
        print("# churn_model.h5 against NumPy", flush=True)
        model, data, names, rows, pred_rows = t_churn(w)
        print("# small Keras-layout files", flush=True)
        t_tiny(w)
        print("# refused files", flush=True)
        t_errors(w)
        print("# serving the imported model", flush=True)
        t_serving(w, model, names, rows, pred_rows)
    finally:
        if failures or os.environ.get("FM_TEST_KEEP"):
            print("# files kept in %s" % w)
        else:
            shutil.rmtree(w, ignore_errors=True)
    if failures:
        sys.exit("%d check(s) failed" % len(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()
