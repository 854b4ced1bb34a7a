"""Explanation throughput: explanations per second, one row at a time on one thread, finmaas
against a peer on the same rows in the same run (credit_data.csv, all 4,454 rows).

Families and peers:
- logistic (exact linear attributions) vs NumPy vectorised beta * (x - baseline) over all rows;
- gbt (TreeSHAP) vs the xgboost package's pred_contribs over all rows (nthread=1);
- mlp relu (exact piecewise Integrated Gradients) and mlp tanh (50-node Integrated Gradients) vs
  a NumPy IG with 50 midpoint steps, all of a row's path points in one batch.
finmaas explains each row separately (the serving case) through fm_bench_explain
(bench/explain_rows.c); the peers work on the whole matrix at once, which favours them.
The goals of the issue: >= 10,000/s for linear and trees, >= 1,000/s for the MLP with 50-step IG.

Run: OPENBLAS_NUM_THREADS=1 python3 bench/explain_bench.py [--build build-explain]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "credit_data.csv")


def read_fmm(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__")
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        raw = blob[8 + n + a:8 + n + b]
        out[name] = np.frombuffer(raw, "<f8").reshape(t["shape"]) if t["dtype"] == "F64" else raw
    return out


def encoded_rows(tool, model):
    p = subprocess.run([tool, model, DATA, "--rows", "1000000000"], capture_output=True,
                       text=True, check=True)
    return np.array([r["x"] for r in json.loads(p.stdout)["rows"]])


def best_rate(fn, n, repeat=3):
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - t))
    return best


def peer_linear(model, x):
    w = read_fmm(model)["layers.0.weight"][:, 0]
    base = x.mean(axis=0)
    return best_rate(lambda: w * (x - base), len(x))


def peer_trees(model, x):
    import xgboost as xgb
    bst = xgb.Booster()
    bst.load_model(bytearray(read_fmm(model)["gbt.booster"]))
    bst.set_param({"nthread": 1})
    return best_rate(lambda: bst.predict(xgb.DMatrix(x, nthread=1), pred_contribs=True), len(x),
                     repeat=1)


def peer_ig(model, x, hidden):
    t = read_fmm(model)
    layers = []
    while "layers.%d.weight" % len(layers) in t:
        l = len(layers)
        layers.append((t["layers.%d.weight" % l], t["layers.%d.bias" % l]))
    act = (lambda z: np.maximum(z, 0)) if hidden == "relu" else np.tanh
    dact = (lambda z: (z > 0).astype(float)) if hidden == "relu" else \
        (lambda z: 1 - np.tanh(z) ** 2)
    base = x.mean(axis=0)
    alphas = (np.arange(50) + 0.5) / 50

    def one(row):
        pts = base + alphas[:, None] * (row - base)
        pres, h = [], pts
        for i, (w, b) in enumerate(layers):
            z = h @ w + b
            pres.append(z)
            h = act(z) if i < len(layers) - 1 else z
        d = np.ones((len(pts), 1))
        for i in range(len(layers) - 1, -1, -1):
            if i < len(layers) - 1:
                d = d * dact(pres[i])
            d = d @ layers[i][0].T
        return (row - base) * d.mean(axis=0)

    n = min(len(x), 1000)
    return best_rate(lambda: [one(r) for r in x[:n]], n, repeat=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-explain"))
    ap.add_argument("--finmaas", default=None)
    args = ap.parse_args()
    finmaas = args.finmaas or os.path.join(args.build, "finmaas")
    if not os.path.exists(finmaas):
        finmaas = os.path.join(ROOT, "build", "finmaas")
    bench = os.path.join(args.build, "bench", "fm_bench_explain")
    tool = os.path.join(args.build, "tests", "explain_rows")
    w = tempfile.mkdtemp(prefix="fm_explain_bench_")
    families = [
        ("logistic", ["--model", "logistic"], [], 10000, "linear"),
        ("gbt", ["--model", "gbt"], [], 10000, "trees"),
        ("mlp relu (exact IG)", ["--model", "mlp", "--activation", "relu"], [], 1000, "relu"),
        ("mlp tanh (50-step IG)", ["--model", "mlp", "--activation", "tanh"], ["--steps", "50"],
         1000, "tanh"),
    ]
    print("%-24s %12s %12s %8s %10s  %s" % ("family", "finmaas/s", "peer/s", "ratio", "goal",
                                             "verdict"))
    for name, train_args, bench_args, goal, peer in families:
        model = os.path.join(w, name.split()[0] + name.split()[-1][:4] + ".fmm")
        subprocess.run([finmaas, "train", "--data", DATA, "--target", "Status", "--out", model,
                        "--quiet", *train_args], check=True, capture_output=True)
        p = subprocess.run([bench, model, DATA, "--repeat", "3" if peer != "trees" else "1",
                            *bench_args], capture_output=True, text=True, check=True)
        mine = json.loads(p.stdout)
        x = encoded_rows(tool, model)
        if peer == "linear":
            theirs = peer_linear(model, x)
        elif peer == "trees":
            theirs = peer_trees(model, x)
        else:
            theirs = peer_ig(model, x, peer)
        rate = mine["per_second"]
        print("%-24s %12.0f %12.0f %8.2f %10s  %s   (completeness %.2g, steps %d)" %
              (name, rate, theirs, rate / theirs, ">= %d/s" % goal,
               "PASS" if rate >= goal else "MISS", mine["max_completeness_error"], mine["steps"]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
