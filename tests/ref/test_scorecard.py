"""Reference test of `finmaas scorecard` and `finmaas decide` (src/scorecard) on credit_data.csv.

Independent recomputations, with pandas / NumPy / scikit-learn:
- every bin of the exported table (CSV and JSON) is re-applied to the raw data: its good and bad
  counts, WoE = ln((g/G)/(b/B)) (0.5 in an empty cell) and IV equal the table's; numeric bins are
  monotonic in WoE and hold at least the minimum share of rows;
- the logistic regression on the WoE matrix built from those bins equals scikit-learn's
  LogisticRegression without penalty within 1e-4;
- the points of each bin equal -(beta_j WoE + beta_0/n) factor + offset/n, with factor = PDO/ln 2
  and offset = base - factor ln(base odds);
- for every row of `finmaas decide`: the points per feature are the table's points of the row's
  bin, they add up to the score, score = offset + factor ln((1 - PD)/PD), and the decision follows
  the cutoffs and the hard rule (an applicant under 18, a row made here, declines);
- bad input exits 2 with one line on stderr and writes no file.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

FINMAAS = os.environ.get("FINMAAS")
SHARED = os.environ.get("FM_SHARED", "/work/shared")
DATA = os.path.join(SHARED, "data", "credit_data.csv")
failures = 0


def check(cond, what, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else ": " + str(detail)), flush=True)
    if not cond:
        failures += 1


def run(*args):
    p = subprocess.run([FINMAAS] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def bin_index(feature, values):
    """The bin of each raw value under the exported bins (-1 when none)."""
    bins = feature["bins"]
    out = np.full(len(values), -1, dtype=int)
    missing = values.isna().to_numpy()
    for k, b in enumerate(bins):
        if b.get("missing"):
            out[missing] = k
        elif feature["type"] == "numeric":
            lo = -np.inf if b["lower"] is None else b["lower"]
            hi = np.inf if b["upper"] is None else b["upper"]
            v = values.to_numpy(dtype=float)
            out[(~missing) & (v > lo) & (v <= hi)] = k
        else:
            out[values.isin(b["categories"]).to_numpy() & ~missing] = k
    return out


def main():
    if not FINMAAS:
        print("FINMAAS must name the finmaas executable", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="fm_scorecard_ref_")
    policy = os.path.join(tmp, "policy.json")
    with open(policy, "w") as f:
        json.dump({"approve_at": 610, "decline_below": 540,
                   "rules": [{"feature": "Age", "op": "<", "value": 18, "decision": "decline",
                              "reason": "applicant under 18"},
                             {"feature": "Job", "op": "==", "value": "partime",
                              "decision": "refer"}]}, f)
    model, table, tjson = (os.path.join(tmp, n) for n in ("m.fmm", "t.csv", "t.json"))
    pdo, base, odds, share = 40.0, 650.0, 30.0, 0.05
    rc, out, err = run("scorecard", "--data", DATA, "--target", "Status", "--out", model,
                       "--table", table, "--table-json", tjson, "--pdo", pdo, "--base-points",
                       base, "--base-odds", odds, "--min-share", share, "--policy", policy,
                       "--quiet")
    check(rc == 0, "finmaas scorecard fits credit_data.csv", err)
    if rc:
        return 1
    card = json.load(open(tjson))
    csv = pd.read_csv(table, keep_default_na=False)
    df = pd.read_csv(DATA)
    y = (df["Status"] == "bad").astype(int).to_numpy()
    G, B = float((y == 0).sum()), float((y == 1).sum())
    factor = pdo / math.log(2)
    offset = base - factor * math.log(odds)
    check(abs(card["factor"] - factor) < 1e-12 and abs(card["offset"] - offset) < 1e-9,
          "factor = PDO / ln 2 and offset = base - factor ln(odds)",
          (card["factor"], factor, card["offset"], offset))
    n = len(card["features"])
    check(n >= 5 and len(csv) == sum(len(f["bins"]) for f in card["features"]),
          "the CSV table has one record per (feature, bin) of the JSON table", (n, len(csv)))
    X = np.zeros((len(df), n))
    worst = 0.0
    for j, f in enumerate(card["features"]):
        idx = bin_index(f, df[f["feature"]])
        check((idx >= 0).all(), "%s: every row falls in one bin" % f["feature"])
        iv = 0.0
        woes = []
        for k, b in enumerate(f["bins"]):
            g = float(((idx == k) & (y == 0)).sum())
            d = float(((idx == k) & (y == 1)).sum())
            gs, ds = (g if g > 0 else 0.5), (d if d > 0 else 0.5)
            woe = math.log((gs / G) / (ds / B))
            iv += (gs / G - ds / B) * woe
            check(g == b["good"] and d == b["bad"], "%s %s: counts %g/%g" % (f["feature"],
                                                                           b["bin"], g, d),
                  (b["good"], b["bad"]))
            worst = max(worst, abs(woe - b["woe"]))
            X[idx == k, j] = woe
            pts = -(f["coefficient"] * b["woe"] + card["intercept"] / n) * factor + offset / n
            check(abs(pts - b["points"]) < 1e-9, "%s %s: points by the formula" %
                  (f["feature"], b["bin"]), (pts, b["points"]))
            rec = csv[(csv["feature"] == f["feature"]) & (csv["bin"] == b["bin"])]
            check(len(rec) == 1 and abs(float(rec["points"].iloc[0]) - b["points"]) < 1e-9 and
                  abs(float(rec["woe"].iloc[0]) - b["woe"]) < 1e-12,
                  "%s %s: the CSV record equals the JSON bin" % (f["feature"], b["bin"]))
            if not b.get("missing"):
                woes.append(b["woe"])
                check(g + d >= share * len(df), "%s %s holds >= %g of the rows" %
                      (f["feature"], b["bin"], share), g + d)
        check(abs(iv - f["iv"]) < 1e-12, "%s: IV %.6f" % (f["feature"], iv), f["iv"])
        if f["type"] == "numeric":
            diffs = np.diff(woes)
            mono = (diffs > 0).all() if f["direction"] == "increasing" else (diffs < 0).all()
            check(mono, "%s: WoE %s over the bins" % (f["feature"], f["direction"]), woes)
    print("  WoE against the recomputation: max |diff| = %.3g" % worst)
    check(worst < 1e-12, "WoE of every bin equals ln((g/G)/(b/B))")
    try:
        lr = LogisticRegression(penalty=None, tol=1e-10, max_iter=100000, solver="newton-cg")
    except TypeError:
        lr = LogisticRegression(penalty="none", tol=1e-10, max_iter=100000, solver="newton-cg")
    lr.fit(X, y)
    ours = np.array([f["coefficient"] for f in card["features"]])
    diff = max(np.abs(lr.coef_[0] - ours).max(), abs(lr.intercept_[0] - card["intercept"]))
    print("  coefficients against scikit-learn: max |diff| = %.3g" % diff)
    check(diff < 1e-4, "logistic regression on WoE equals scikit-learn's within 1e-4")

    # decide: every row of the data plus an applicant under 18 (a copy of row 0).
    app = df.copy()
    young = app.iloc[[0]].copy()
    young["Age"] = 17
    app = pd.concat([app, young], ignore_index=True)
    app.insert(0, "id", ["r%d" % i for i in range(len(app))])
    apps = os.path.join(tmp, "apps.csv")
    app.to_csv(apps, index=False, na_rep="NA")
    dec = os.path.join(tmp, "d.csv")
    rc, out, err = run("decide", "--model", model, "--data", apps, "--out", dec, "--keep", "id")
    check(rc == 0, "finmaas decide", err)
    d = pd.read_csv(dec, keep_default_na=False)
    check(len(d) == len(app) and list(d["id"]) == list(app["id"]), "one decision per applicant")
    pd_ = d["pd"].to_numpy(dtype=float)
    score = d["score"].to_numpy(dtype=float)
    rel = np.abs(score - (offset + factor * np.log((1 - pd_) / pd_))).max()
    print("  score against offset + factor ln((1-PD)/PD): max |diff| = %.3g" % rel)
    check(rel < 1e-8, "score = offset + factor ln(odds good:bad) for every row")
    total = sum(d["points_" + f["feature"]].to_numpy(dtype=float) for f in card["features"])
    check(np.abs(total - score).max() < 1e-9, "the points of the features add up to the score")
    worst = 0.0
    for f in card["features"]:
        idx = bin_index(f, app[f["feature"]])
        want = np.array([f["bins"][k]["points"] for k in idx])
        worst = max(worst, np.abs(want - d["points_" + f["feature"]].to_numpy(dtype=float)).max())
    check(worst < 1e-9, "each feature's points are the table's points of the row's bin", worst)
    under = app["Age"].to_numpy() < 18
    partime = (app["Job"] == "partime").to_numpy()
    want = np.where(under | (score < 540), "decline",
                    np.where(partime | (score < 610), "refer", "approve"))
    check((d["decision"].to_numpy() == want).all(), "decisions follow the cutoffs and the rules",
          (d["decision"].to_numpy() != want).sum())
    last = d.iloc[-1]
    check(last["decision"] == "decline" and "applicant under 18" in last["rules_fired"],
          "the applicant under 18 declines with the rule's reason", dict(last))
    check(set(d["decision"]) == {"approve", "refer", "decline"}, "all three decisions occur")

    # Bad input: exit 2, one line, no file.
    bad_policy = os.path.join(tmp, "bad.json")
    with open(bad_policy, "w") as f:
        f.write('{"approve_at": 500, "decline_below": 600}')
    cases = [
        (["scorecard", "--data", DATA, "--target", "nosuch"], "an unknown target"),
        (["scorecard", "--data", DATA, "--target", "Status", "--min-share", "0.9"], "min share"),
        (["scorecard", "--data", DATA, "--target", "Status", "--policy", bad_policy],
         "a policy with approve_at below decline_below"),
        (["scorecard", "--data", DATA, "--target", "Status", "--drop", "Nope"], "--drop unknown"),
        (["scorecard", "--data", os.path.join(tmp, "none.csv"), "--target", "Status"],
         "a missing data file"),
    ]
    for args, what in cases:
        out_path = os.path.join(tmp, "bad.fmm")
        rc, out, err = run(*(args + ["--out", out_path]))
        lines = err.strip().splitlines()
        check(rc in (1, 2) and len(lines) == 1 and not os.path.exists(out_path),
              "%s: exit %d, one line, no file" % (what, rc), err)
    plain = os.path.join(tmp, "plain.fmm")
    run("train", "--data", DATA, "--target", "Status", "--model", "logistic", "--epochs", "2",
        "--out", plain, "--quiet")
    rc, out, err = run("decide", "--model", plain, "--data", apps, "--out", dec + ".x")
    check(rc == 2 and "scorecard" in err and not os.path.exists(dec + ".x"),
          "decide with a model without a scorecard: exit 2", err)
    print("# test_scorecard: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
