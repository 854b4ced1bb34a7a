#!/usr/bin/python3
"""Gradient-boosted trees benchmark: `finmaas train --model gbt` against the xgboost Python package.

Both sides run the same library (Debian's libxgboost) on the same rows with the same settings, so
this measures what finmaas adds around XGBoost, and checks that both learn the same model:

  * data: ../shared/data/credit_data.csv (target Status, positive "bad") and a seeded synthetic
    binary set (make_classification, 200,000 rows x 30 numeric features by default, so that the
    timing is not noise), each split 70/30, stratified, random_state=42;
  * finmaas trains on the 70% CSV: `finmaas train --model gbt` with hist trees of depth 4, eta
    0.05, 300 rounds, subsample and colsample 0.8, no validation split, no early stopping, seed 0;
  * xgboost trains on the same rows after the same encoding: the finmaas model's fitted
    preprocessing (from `finmaas inspect`) is applied here with NumPy, then, in a fresh child
    process per run (as every `finmaas train` is), xgb.DMatrix + xgb.train with the same
    parameters and seed;
  * timed: finmaas's fit (`seconds.boosting` in the summary `train` prints: building XGBoost's
    matrices and boosting, the work xgboost's DMatrix + train do) against xgboost's DMatrix +
    train, for nthread 1 and 2; CSV reading and encoding are excluded on both sides. Reported
    beside: finmaas's `seconds.train` (the fit plus serializing the booster to the JSON the model
    file stores and checking it) and the whole `finmaas train` process (reading, encoding, the
    validation report, saving). Medians of --repeat runs, the engines alternating;
  * quality: test AUC of both on the 30% (finmaas through `finmaas predict`, xgboost in memory,
    scikit-learn's roc_auc_score), and the largest difference between their test predictions
    (0 when they learned the same trees).

Prints a table and one PASS/MISS line per run against the goal (finmaas fit time within 10% of
xgboost's), and writes bench/out/gbt_vs_xgboost.json.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
SHARED = Path(os.environ.get("FM_SHARED", REPO.parent / "shared"))
GOAL_RATIO = 1.10  # finmaas fit seconds / xgboost fit seconds, at most
MISSING = {"", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "<NA>"}
COMMAND_TIMEOUT = 1800


def run(argv):
    start = time.perf_counter()
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=COMMAND_TIMEOUT)
    if p.returncode != 0:
        raise SystemExit("%s failed (exit %d): %s" % (" ".join(map(str, argv)), p.returncode,
                                                      p.stderr[-2000:]))
    return p.stdout, time.perf_counter() - start


def read_table(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, list(r)


def write_table(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def encode(header, rows, prep):
    """The finmaas encoding of rows (data/prep.h) from its fitted parameters, with NumPy."""
    import numpy as np

    width = sum(c["width"] for c in prep["columns"])
    x = np.zeros((len(rows), width))
    for c in prep["columns"]:
        j, at = header.index(c["name"]), c["offset"]
        text = [r[j] for r in rows]
        missing = np.array([t in MISSING for t in text])
        if c["type"] == "numeric":
            v = np.array([np.nan if m else float(t) for t, m in zip(text, missing)])
            x[:, at] = (np.where(missing, c["median"], v) - c["mean"]) / c["std"]
            if c["missing_indicator"]:
                x[:, at + 1] = missing
        else:
            index = {k: i for i, k in enumerate(c["categories"])}
            for r, (t, m) in enumerate(zip(text, missing)):
                k = c["most_frequent"] if m else index.get(t, -1)
                if k >= 0:
                    x[r, at + k] = 1.0
            if c["missing_indicator"]:
                x[:, at + len(c["categories"])] = missing
    return x


def synthetic(path, rows, features, seed):
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=features, n_informative=12,
                               n_redundant=6, n_classes=2, n_clusters_per_class=2,
                               weights=[0.7, 0.3], flip_y=0.05, class_sep=0.8, shift=None,
                               scale=None, random_state=seed)
    frame = pd.DataFrame(x, columns=["x%d" % i for i in range(features)])
    frame["y"] = np.where(y == 1, "bad", "good")
    frame.to_csv(path, index=False, float_format="%.7g")


def split(path, target, directory, name):
    from sklearn.model_selection import train_test_split

    header, rows = read_table(path)
    y = [r[header.index(target)] for r in rows]
    train, test = train_test_split(rows, test_size=0.3, stratify=y, random_state=42)
    paths = directory / (name + "_train.csv"), directory / (name + "_test.csv")
    write_table(paths[0], header, train)
    write_table(paths[1], header, test)
    return paths


def peer_main(args):
    """One xgboost run in this child process: DMatrix + train on the saved encoded rows, timed;
    then the test rows' predictions saved beside. Prints {"fit_s": seconds}."""
    import numpy as np
    import xgboost as xgb

    d = Path(args["dir"])
    x_train, y_train = np.load(d / "x_train.npy"), np.load(d / "y_train.npy")
    x_test = np.load(d / "x_test.npy")
    start = time.perf_counter()
    dtrain = xgb.DMatrix(x_train, label=y_train, nthread=args["params"]["nthread"])
    booster = xgb.train(args["params"], dtrain, num_boost_round=args["rounds"])
    fit = time.perf_counter() - start
    np.save(d / "p_xgboost.npy", booster.inplace_predict(x_test))
    print(json.dumps({"fit_s": fit}))


def bench_one(opts, finmaas, name, data, target, directory):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    train_csv, test_csv = split(data, target, directory, name)
    header, train_rows = read_table(train_csv)
    _, test_rows = read_table(test_csv)
    jt = header.index(target)
    y_train = np.array([1.0 if r[jt] == "bad" else 0.0 for r in train_rows])
    y_test = np.array([1 if r[jt] == "bad" else 0 for r in test_rows])
    results = []
    for threads in opts.threads:
        model = directory / ("%s_t%d.fmm" % (name, threads))
        argv = [finmaas, "train", "--data", train_csv, "--target", target, "--positive", "bad",
                "--model", "gbt", "--rounds", opts.rounds, "--max-depth", opts.depth, "--eta",
                opts.eta, "--subsample", "0.8", "--colsample", "0.8", "--min-child-weight", "1",
                "--gbt-lambda", "1", "--gbt-alpha", "0", "--early-stopping", "0",
                "--valid-fraction", "0", "--threads", threads, "--seed", "0", "--quiet",
                "--out", model]
        params = {"tree_method": "hist", "objective": "binary:logistic", "max_depth": opts.depth,
                  "eta": opts.eta, "subsample": 0.8, "colsample_bytree": 0.8,
                  "min_child_weight": 1, "lambda": 1, "alpha": 0, "nthread": threads, "seed": 0,
                  "eval_metric": "logloss"}
        fm_fit, fm_train, fm_wall, xg_fit = [], [], [], []
        x_train = x_test = None
        peer = [sys.executable, Path(__file__).resolve(), "--peer",
                json.dumps({"dir": str(directory), "params": params, "rounds": opts.rounds})]
        for rep in range(opts.repeat):
            out, wall = run(argv)
            seconds = json.loads(out)["seconds"]
            fm_fit.append(float(seconds["boosting"]))
            fm_train.append(float(seconds["train"]))
            fm_wall.append(wall)
            if x_train is None:  # the encoding finmaas fitted, applied here once
                prep = json.loads(run([finmaas, "inspect", model])[0])["preprocessing"]
                x_train, x_test = encode(header, train_rows, prep), encode(header, test_rows, prep)
                np.save(directory / "x_train.npy", x_train)
                np.save(directory / "y_train.npy", y_train)
                np.save(directory / "x_test.npy", x_test)
            xg_fit.append(json.loads(run(peer)[0].strip().splitlines()[-1])["fit_s"])
        pred_text, _ = run([finmaas, "predict", "--model", model, "--data", test_csv])
        p_fm = np.array([float(r["p_bad"]) for r in csv.DictReader(pred_text.splitlines())])
        p_xg = np.load(directory / "p_xgboost.npy")
        r = {
            "dataset": name, "train_rows": len(train_rows), "test_rows": len(test_rows),
            "features": int(x_train.shape[1]), "threads": threads,
            "finmaas_fit_s": statistics.median(fm_fit), "xgboost_fit_s": statistics.median(xg_fit),
            "finmaas_train_s": statistics.median(fm_train),
            "finmaas_process_s": statistics.median(fm_wall),
            "finmaas_fit_runs": fm_fit, "xgboost_fit_runs": xg_fit,
            "auc_finmaas": roc_auc_score(y_test, p_fm), "auc_xgboost": roc_auc_score(y_test, p_xg),
            "max_prediction_difference": float(np.max(np.abs(p_fm - p_xg))),
        }
        r["ratio"] = r["finmaas_fit_s"] / r["xgboost_fit_s"]
        results.append(r)
        print("  %s, %d thread(s): finmaas %.3f s, xgboost %.3f s" %
              (name, threads, r["finmaas_fit_s"], r["xgboost_fit_s"]), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finmaas", default=str(REPO / "build" / "finmaas"))
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic rows (200000)")
    parser.add_argument("--features", type=int, default=30, help="synthetic features (30)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.05)
    parser.add_argument("--threads", default="1,2", help="nthread values (1,2)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (0)")
    parser.add_argument("--keep", action="store_true", help="keep the CSV files and models")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.peer:
        peer_main(json.loads(opts.peer))
        return 0
    opts.threads = [int(t) for t in opts.threads.split(",")]
    if opts.repeat < 1 or opts.rows < 1000 or opts.features < 18:
        parser.error("need --repeat >= 1, --rows >= 1000, --features >= 18")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="gbt-", dir=OUT_DIR))
    synth = directory / "synthetic.csv"
    synthetic(synth, opts.rows, opts.features, opts.seed)
    results = []
    for name, data, target in (("credit_data", SHARED / "data" / "credit_data.csv", "Status"),
                               ("synthetic", synth, "y")):
        results += bench_one(opts, opts.finmaas, name, data, target, directory)

    print()
    head = ("dataset", "train rows", "feat", "thr", "finmaas fit", "xgboost fit", "ratio",
            "finmaas fit+serialize", "finmaas process", "AUC finmaas", "AUC xgboost", "max |dp|")
    table = [head] + [(r["dataset"], "%d" % r["train_rows"], "%d" % r["features"],
                       "%d" % r["threads"], "%.3f s" % r["finmaas_fit_s"],
                       "%.3f s" % r["xgboost_fit_s"], "%.3fx" % r["ratio"],
                       "%.3f s" % r["finmaas_train_s"],
                       "%.3f s" % r["finmaas_process_s"], "%.4f" % r["auc_finmaas"],
                       "%.4f" % r["auc_xgboost"], "%.2g" % r["max_prediction_difference"])
                      for r in results]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for n, row in enumerate(table):
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for r in results:
        ok = r["ratio"] <= GOAL_RATIO
        print("%s  %s, %d thread(s): finmaas fit within 10%% of xgboost (%.3fx <= %.2fx)" %
              ("PASS" if ok else "MISS", r["dataset"], r["threads"], r["ratio"], GOAL_RATIO))
    import xgboost

    doc = {"settings": {"rounds": opts.rounds, "max_depth": opts.depth, "eta": opts.eta,
                        "subsample": 0.8, "colsample": 0.8, "tree_method": "hist",
                        "repeat": opts.repeat, "synthetic_rows": opts.rows,
                        "synthetic_features": opts.features},
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "xgboost": xgboost.__version__,
                       "load_average": os.getloadavg()},
           "results": results}
    with open(OUT_DIR / "gbt_vs_xgboost.json", "w") as f:
        json.dump(doc, f, indent=2)
    if not opts.keep:
        for p in directory.iterdir():
            p.unlink()
        directory.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
