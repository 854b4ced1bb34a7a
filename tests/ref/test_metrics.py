"""Compares finmaas's metrics (src/eval, through tests/tools/eval_metrics) with scikit-learn.

Random cases, seeded: binary with continuous scores, heavy ties, weights (zeros included), tiny n,
strong imbalance, exact 0/1 probabilities (log-loss clipping), 100,000 rows; multiclass with K = 3
and 5, with and without weights and ties; regression with and without weights. Every value of
each report is compared with sklearn.metrics at a relative tolerance of 1e-9 (with an absolute
floor of 1e-13 for values that are exactly zero). The largest difference per metric is printed.

Where a metric is undefined our report has null: AUC, KS and Gini with one class (sklearn raises
or returns NaN), and R-squared of a constant target (sklearn returns 1.0 or 0.0 by convention;
finmaas deliberately returns NaN, see src/eval/metrics.h).

sklearn 1.2's log_loss defaults to eps="auto" (machine epsilon); finmaas fixes eps = 1e-15, the
value its contract names, so the reference is called with eps=1e-15.

Also checks that malformed, truncated and oversized input makes the tool fail with a message
naming the line, instead of printing a report.
"""
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
from sklearn import metrics as skm

TOOL = os.path.join(os.environ.get("FM_TOOLS", "build/tests"), "eval_metrics")
REL_TOL = 1e-9
ABS_FLOOR = 1e-13

failures = []
worst = {}  # metric -> (largest relative difference, case name)


def run_tool(text):
    proc = subprocess.run([TOOL], input=text.encode(), capture_output=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError("eval_metrics failed (%d): %s" % (proc.returncode, proc.stderr.decode()))
    return json.loads(proc.stdout)


def sk(fn, *args, **kwargs):
    """An sklearn value, or None where sklearn raises or returns NaN (undefined)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = float(fn(*args, **kwargs))
    except ValueError:
        return None
    return None if math.isnan(v) else v


def check(case, metric, got, want):
    metric = case.split("-")[0] + "." + metric
    if want is None:
        if got is not None:
            failures.append("%s: %s = %r, expected null" % (case, metric, got))
        return
    if got is None:
        failures.append("%s: %s = null, expected %r" % (case, metric, want))
        return
    diff = abs(got - want)
    rel = diff / abs(want) if want != 0 else diff
    if rel > worst.get(metric, (-1.0, ""))[0]:
        worst[metric] = (rel, case)
    if not (diff <= REL_TOL * abs(want) or diff <= ABS_FLOOR):
        failures.append("%s: %s = %r, sklearn %r (rel diff %.3g)" % (case, metric, got, want, rel))


def rows_text(header, columns):
    lines = [header]
    for row in zip(*columns):
        lines.append(" ".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row))
    return "\n".join(lines) + "\n"


def binary_case(name, prob, y, w=None, threshold=0.5):
    prob = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    header = "binary %d" % len(y) + (" weighted" if w is not None else "")
    header += " threshold %r" % float(threshold)
    cols = [prob.tolist(), y.tolist()]
    if w is not None:
        cols.append(np.asarray(w, dtype=np.float64).tolist())
    got = run_tool(rows_text(header, cols))

    auc = sk(skm.roc_auc_score, y, prob, sample_weight=w)

    def ks_ref():
        fpr, tpr, _ = skm.roc_curve(y, prob, sample_weight=w)
        return np.max(tpr - fpr)

    ks = sk(ks_ref) if auc is not None else None
    pred = (prob >= threshold).astype(np.int64)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel()
    want = {
        "auc": auc,
        "ks": ks,
        "gini": None if auc is None else 2.0 * auc - 1.0,
        "logloss": sk(skm.log_loss, y, prob, eps=1e-15, sample_weight=w, labels=[0, 1]),
        "brier": sk(skm.brier_score_loss, y, prob, sample_weight=w),
        "accuracy": sk(skm.accuracy_score, y, pred, sample_weight=w),
        "precision": sk(skm.precision_score, y, pred, sample_weight=w, zero_division=0),
        "recall": sk(skm.recall_score, y, pred, sample_weight=w, zero_division=0),
        "f1": sk(skm.f1_score, y, pred, sample_weight=w, zero_division=0),
        "threshold": float(threshold),
        "rows": float(len(y)),
    }
    if set(got) != set(want) | {"confusion"}:
        failures.append("%s: keys %s" % (name, sorted(got)))
        return
    for k, v in want.items():
        check(name, k, got[k], v)
    for k, v in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)):
        check(name, "confusion." + k, got["confusion"][k], float(v))


def multiclass_case(name, prob, y, w=None):
    n, k = prob.shape
    header = "multiclass %d %d" % (n, k) + (" weighted" if w is not None else "")
    cols = [prob[:, j].tolist() for j in range(k)] + [y.tolist()]
    if w is not None:
        cols.append(w.tolist())
    got = run_tool(rows_text(header, cols))
    want = {
        "accuracy": sk(skm.accuracy_score, y, np.argmax(prob, axis=1), sample_weight=w),
        "logloss": sk(skm.log_loss, y, prob, eps=1e-15, sample_weight=w, labels=list(range(k))),
        "rows": float(n),
    }
    if set(got) != set(want):
        failures.append("%s: keys %s" % (name, sorted(got)))
        return
    for key, v in want.items():
        check(name, key, got[key], v)


def regression_case(name, pred, y, w=None, constant=False):
    header = "regression %d" % len(y) + (" weighted" if w is not None else "")
    cols = [pred.tolist(), y.tolist()] + ([w.tolist()] if w is not None else [])
    got = run_tool(rows_text(header, cols))
    want = {
        "rmse": sk(skm.mean_squared_error, y, pred, sample_weight=w, squared=False),
        "mae": sk(skm.mean_absolute_error, y, pred, sample_weight=w),
        # A constant target: sklearn says 1.0 or 0.0, finmaas null by design.
        "r2": None if constant else sk(skm.r2_score, y, pred, sample_weight=w),
        "rows": float(len(y)),
    }
    if set(got) != set(want):
        failures.append("%s: keys %s" % (name, sorted(got)))
        return
    for key, v in want.items():
        check(name, key, got[key], v)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def binary_cases(rng):
    for i in range(6):
        n = int(rng.integers(50, 3000))
        z = rng.normal(size=n)
        y = (rng.random(n) < sigmoid(1.5 * z)).astype(int)
        binary_case("binary-continuous-%d" % i, sigmoid(z + rng.normal(size=n)), y)
    for i in range(6):
        n = int(rng.integers(50, 3000))
        z = rng.normal(size=n)
        y = (rng.random(n) < sigmoid(2 * z)).astype(int)
        prob = np.round(sigmoid(z), 1)  # heavy ties, exact 0.0 and 1.0 impossible but 0.5 common
        binary_case("binary-ties-%d" % i, prob, y, threshold=0.5)
        binary_case("binary-ties-threshold-at-a-score-%d" % i, prob, y, threshold=float(prob[0]))
    for i in range(6):
        n = int(rng.integers(50, 3000))
        z = rng.normal(size=n)
        y = (rng.random(n) < sigmoid(z)).astype(int)
        w = rng.uniform(0, 3, size=n)
        w[rng.random(n) < 0.1] = 0.0  # zero weights: sklearn's roc_curve drops such rows
        prob = sigmoid(z) if i % 2 else np.round(sigmoid(z), 2)
        binary_case("binary-weighted-%d" % i, prob, y, w, threshold=float(rng.uniform(0.2, 0.8)))
    for n in (2, 3):
        for i in range(8):
            y = rng.integers(0, 2, size=n)
            prob = np.round(rng.random(n), 1)
            w = rng.uniform(0.5, 2, size=n) if i % 2 else None
            binary_case("binary-tiny-n%d-%d" % (n, i), prob, y, w)
    binary_case("binary-two-rows-perfect", [0.2, 0.9], [0, 1])
    binary_case("binary-two-rows-inverted", [0.9, 0.2], [0, 1])
    binary_case("binary-all-tied", [0.3] * 5, [0, 1, 0, 1, 1])
    binary_case("binary-one-class", [0.3, 0.6, 0.8], [1, 1, 1])
    binary_case("binary-positives-weigh-nothing", [0.3, 0.6, 0.8], [0, 1, 0], [1.0, 0.0, 2.0])
    for i in range(3):
        n = 20000
        z = rng.normal(size=n)
        y = (rng.random(n) < 0.002 * np.exp(z)).astype(int)
        y[int(rng.integers(0, n))] = 1
        w = rng.uniform(0.1, 5, size=n) if i == 2 else None
        binary_case("binary-imbalanced-%d" % i, sigmoid(z - 5), y, w, threshold=0.01)
    # Probabilities of exactly 0 and 1, right and wrong: log-loss clipping.
    n = 400
    y = rng.integers(0, 2, size=n)
    prob = rng.choice([0.0, 1.0, 0.5, 1e-17, 1 - 1e-16], size=n)
    binary_case("binary-clipping", prob, y)
    binary_case("binary-clipping-weighted", prob, y, rng.uniform(0, 1, size=n))
    n = 100000
    z = rng.normal(size=n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    binary_case("binary-100k", sigmoid(z + 0.5 * rng.normal(size=n)), y)
    binary_case("binary-100k-ties-weighted", np.round(sigmoid(z), 3), y, rng.uniform(0, 2, size=n))


def multiclass_cases(rng):
    for k in (3, 5):
        for i in range(4):
            n = int(rng.integers(50, 3000))
            prob = rng.dirichlet(np.ones(k) * 0.7, size=n)
            if i >= 2:
                prob = np.round(prob, 1)  # argmax ties, exact zeros, rows not summing to 1
            y = np.array([rng.choice(k, p=row / row.sum()) if row.sum() > 0 else 0 for row in prob])
            w = rng.uniform(0, 2, size=n) if i % 2 else None
            multiclass_case("multiclass-k%d-%d" % (k, i), prob, y, w)
    prob = np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    multiclass_case("multiclass-ties-and-hard", prob, np.array([0, 1, 0, 1]))


def regression_cases(rng):
    for i in range(6):
        n = int(rng.integers(2, 5000))
        y = rng.normal(3, 10, size=n)
        pred = y + rng.normal(0, 4, size=n) if i % 3 else rng.normal(3, 10, size=n)
        w = rng.uniform(0, 3, size=n) if i % 2 else None
        regression_case("regression-%d" % i, pred, y, w)
    y = rng.normal(size=1000)
    regression_case("regression-perfect", y.copy(), y)
    regression_case("regression-constant-target", rng.normal(size=10), np.full(10, 3.0),
                    constant=True)


BAD_INPUTS = [
    ("empty", ""),
    ("unknown kind", "ranking 3\n"),
    ("zero rows", "binary 0\n"),
    ("rows not a number", "binary three\n"),
    ("oversized rows", "binary 99999999999999\n0.1 0\n"),
    ("oversized matrix", "multiclass 40000000 1000\n"),
    ("classes missing", "multiclass 2\n"),
    ("unknown option", "binary 1 sorted\n0.5 1\n"),
    ("truncated", "binary 3\n0.1 0\n0.2 1\n"),
    ("truncated row", "binary 2\n0.1 0\n0.2\n"),
    ("extra row", "binary 1\n0.1 0\n0.2 1\n"),
    ("extra field", "binary 1\n0.1 0 7\n"),
    ("missing weight", "binary 2 weighted\n0.1 0 1\n0.2 1\n"),
    ("label out of range", "binary 2\n0.1 0\n0.2 2\n"),
    ("multiclass label out of range", "multiclass 1 3\n0.2 0.3 0.5 3\n"),
    ("fractional label", "binary 2\n0.1 0\n0.2 1.0\n"),
    ("nan", "binary 2\n0.1 0\nnan 1\n"),
    ("infinite weight", "regression 1 weighted\n1 2 inf\n"),
    ("garbage number", "regression 2\n1 2\n1x 2\n"),
    ("blank line inside", "binary 2\n0.1 0\n\n0.2 1\n"),
    ("nul byte", "binary 1\n0.1\x00 0\n"),
    ("long line", "binary 1\n" + "1" * (1 << 21) + " 0\n"),
]


def bad_input_cases():
    for name, text in BAD_INPUTS:
        proc = subprocess.run([TOOL], input=text.encode(), capture_output=True, timeout=60)
        err = proc.stderr.decode()
        if proc.returncode != 1 or proc.stdout or ("line" not in err and "input" not in err):
            failures.append("bad input '%s': status %d, stdout %r, stderr %r"
                            % (name, proc.returncode, proc.stdout[:80], err[:200]))
        else:
            print("  rejected %-30s %s" % (name + ":", err.strip()[:100]))


def main():
    rng = np.random.default_rng(20240611)
    binary_cases(rng)
    multiclass_cases(rng)
    regression_cases(rng)
    print("largest relative difference from sklearn per metric:")
    for metric in sorted(worst):
        rel, case = worst[metric]
        print("  %-22s %.3g  (%s)" % (metric, rel, case))
    bad_input_cases()
    for f in failures:
        print("FAIL", f)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
