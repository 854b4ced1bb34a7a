"""Governance at training time, checked against independent computations.

On credit-g with sex derived from personal_status and age protected (banded):
- protected columns are left out of the features and stored with their resolved bands;
- `--reweigh` trains exactly the model that a weight column holding AIF360's reweighing weights
  (n_g n_y / (n n_gy) over the joint sex x age-band groups, computed here with NumPy) trains, and
  the description keeps the fairness before and after mitigation;
- the description holds the explanation baselines, global explanations (permutation importance,
  partial dependence, mean absolute attribution) and fairness on the validation rows;
- `finmaas predict --explain` gives complete attributions (they sum to score - baseline_score) with
  score = log-odds of the predicted probability, and reason codes that point toward decline;
- bad governance options exit 2 with one line."""
import json
import os
import subprocess

import numpy as np

import fmref

d = fmref.tempdir()
src = fmref.read_csv(os.path.join(fmref.SHARED, "data", "credit-g.csv"))
frame = src.copy()
frame["sex"] = np.where(frame["personal_status"].str.startswith("female"), "female", "male")
frame = frame.drop(columns=["personal_status"])

# AIF360 reweighing over the joint groups (sex, age band), on every row (no validation split).
edges = [25, 35, 45, 55, 65]
band = np.searchsorted(edges, frame["age"].to_numpy(), side="right")
y = (frame["class"] == "good").to_numpy().astype(int)
joint = np.array([f"{s}|{b}" for s, b in zip(frame["sex"], band)])
n = len(frame)
w = np.empty(n)
for g in np.unique(joint):
    for label in (0, 1):
        cell = (joint == g) & (y == label)
        if cell.sum():
            w[cell] = (joint == g).sum() * (y == label).sum() / (n * cell.sum())
frame["w"] = w
data = os.path.join(d, "credit-g-sex.csv")
frame.to_csv(data, index=False)

common = ["--data", data, "--target", "class", "--valid-fraction", "0", "--epochs", "40",
          "--quiet"]
reweighed = os.path.join(d, "reweighed.fmm")
weighted = os.path.join(d, "weighted.fmm")
fmref.run("train", *common, "--drop", "w", "--protected", "sex,age", "--reweigh", "--out",
          reweighed)
fmref.run("train", *common, "--drop", "sex,age", "--weight-column", "w",
          "--no-global-explanations", "--out", weighted)

out1, out2 = os.path.join(d, "p1.csv"), os.path.join(d, "p2.csv")
fmref.run("predict", "--model", reweighed, "--data", data, "--out", out1)
fmref.run("predict", "--model", weighted, "--data", data, "--out", out2)
a, b = fmref.read_csv(out1)["p_good"].to_numpy(), fmref.read_csv(out2)["p_good"].to_numpy()
fmref.check(np.max(np.abs(a - b)) < 1e-9,
            f"--reweigh equals a NumPy reweighing weight column (max diff {np.max(np.abs(a - b)):.2e})")

info = fmref.run_json("inspect", reweighed)
features = [f["name"] if isinstance(f, dict) else f for f in info["features"]]
fmref.check("sex" not in features and "age" not in features,
            "protected columns are not features")
fair = info["fairness"]
prot = {p["attribute"]: p for p in fair["protected"]}
fmref.check(prot["age"]["bands"] == edges, "age is stored with its resolved bands")
fmref.check(prot["sex"]["bands"] is None, "sex groups by value")
fmref.check(fair["mitigation"] == "reweighing", "the mitigation is named")
fmref.check(len(fair["before_mitigation"]) == 2 and len(fair["attributes"]) == 2,
            "fairness before and after mitigation, per attribute")
fmref.check(fair["data"] == "training" and fair["rows"] == n, "measured on the training rows")


def selection(attrs, name):
    a = next(x for x in attrs if x["attribute"] == name)
    return {g["group"]: g["selection_rate"] for g in a["groups"]}


print("selection rates by sex before:", selection(fair["before_mitigation"], "sex"))
print("selection rates by sex after: ", selection(fair["attributes"], "sex"))

# The stored fairness equals `finmaas fairness` on the same rows with the same bands.
cli = fmref.run_json("fairness", "--model", reweighed, "--data", data, "--protected", "sex,age",
                     "--threshold", str(fair["threshold"]))
for attr in cli["attributes"]:
    stored = next(x for x in fair["attributes"] if x["attribute"] == attr["attribute"])
    same = all(abs(g1["selection_rate"] - g2["selection_rate"]) < 1e-12 and
               g1["count"] == g2["count"] for g1, g2 in zip(attr["groups"], stored["groups"]))
    fmref.check(same, f"stored fairness of {attr['attribute']} equals finmaas fairness")

# Explanations and global explanations are stored.
fmref.check("explain" in info, "the explanation baselines are stored")
glob = info.get("global_explanations", {})
pi = {x["feature"] for x in glob.get("permutation_importance", [])}
fmref.check(pi == set(features), "permutation importance for every feature")
fmref.check(len(glob.get("partial_dependence", [])) == len(features),
            "partial dependence for every feature")
fmref.check(set(glob.get("mean_abs_attribution", {})) == set(features),
            "mean absolute attribution for every feature")

# `finmaas importance` recomputes them on any labelled file: on the training rows (all of them,
# nothing was held out) it gives exactly what training stored.
again = fmref.run_json("importance", "--model", reweighed, "--data", data)
same_pi = all(abs(a["mean"] - b["mean"]) < 1e-12 and a["feature"] == b["feature"]
              for a, b in zip(again["permutation_importance"], glob["permutation_importance"]))
fmref.check(same_pi, "finmaas importance on the training rows equals the stored permutation importance")
same_abs = all(abs(again["mean_abs_attribution"][k] - v) < 1e-12
               for k, v in glob["mean_abs_attribution"].items())
fmref.check(same_abs, "finmaas importance equals the stored mean absolute attribution")

# predict --explain: completeness, score = log-odds, reasons toward decline.
ex = os.path.join(d, "explained.csv")
fmref.run("predict", "--model", reweighed, "--data", data, "--explain", "--out", ex)
e = fmref.read_csv(ex)
attr_cols = [c for c in e.columns if c.startswith("attr_")]
fmref.check(sorted(c[5:] for c in attr_cols) == sorted(features), "one attribution per feature")
gap = np.abs(e[attr_cols].sum(axis=1) - (e["score"] - e["baseline_score"])).max()
fmref.check(gap < 1e-4, f"attributions sum to score - baseline_score (max gap {gap:.2e})")
p = np.clip(e["p_good"].to_numpy(), 1e-7, 1 - 1e-7)
logit_gap = np.abs(np.log(p / (1 - p)) - e["score"]).max()
fmref.check(logit_gap < 1e-4, f"score is the log-odds of P(good) (max gap {logit_gap:.2e})")
ok = True
for _, row in e.iterrows():
    for k in range(1, 5):
        f = row[f"reason_{k}"]
        if isinstance(f, str) and f:
            ok &= row[f"attr_{f}"] < 0
fmref.check(ok, "every reason code's attribution pushes toward decline")
declined = e[e["p_good"] < 0.5]
fmref.check(len(declined) > 0 and declined["reason_1"].notna().all(),
            "every declined applicant gets at least one reason")

# A credit model of P(bad): approval is "good" by default, so reasons are the features that raise
# the log-odds of bad (positive attributions).
badm = os.path.join(d, "pbad.fmm")
fmref.run("train", "--data", os.path.join(fmref.SHARED, "data", "credit_data.csv"), "--target",
          "Status", "--positive", "bad", "--quiet", "--no-global-explanations", "--out", badm)
bx = os.path.join(d, "pbad.csv")
fmref.run("predict", "--model", badm, "--data", os.path.join(fmref.SHARED, "data",
          "credit_data.csv"), "--explain", "--out", bx)
e2 = fmref.read_csv(bx).head(500)
ok = True
for _, row in e2.iterrows():
    for k in range(1, 5):
        f = row[f"reason_{k}"]
        if isinstance(f, str) and f:
            ok &= row[f"attr_{f}"] > 0
fmref.check(ok, "P(bad) model: every reason raises the log-odds of bad (approval is 'good')")

# A search with protected attributes: no candidate sees them, and the chosen model stores their
# fairness (the jobs API takes the same "protected" member of the search specification).
sm = os.path.join(d, "search.fmm")
fmref.run("search", "--data", data, "--target", "class", "--drop", "w", "--protected", "sex,age",
          "--budget", "2", "--folds", "3", "--quiet", "--json", "--out", sm)
sinfo = fmref.run_json("inspect", sm)
snames = [f["name"] for f in sinfo["features"]]
fmref.check("sex" not in snames and "age" not in snames, "search: protected columns are no features")
fmref.check(len(sinfo.get("fairness", {}).get("attributes", [])) == 2,
            "search: the chosen model stores the fairness of both attributes")

# Bad options: exit 2, one line.
for args, what in [(["--reweigh"], "--reweigh without --protected"),
                   (["--protected", "nope"], "unknown protected column"),
                   (["--protected", "age", "--bands", "age=30,20"], "decreasing bands"),
                   (["--protected", "class"], "protected target")]:
    r = subprocess.run([fmref.FINMAAS, "train", "--data", data, "--target", "class", "--out",
                        os.path.join(d, "bad.fmm"), "--quiet", *args],
                       capture_output=True, text=True)
    fmref.check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
                f"{what}: exit 2 with one line ({r.returncode}: {r.stderr.strip()})")
    fmref.check(not os.path.exists(os.path.join(d, "bad.fmm")), f"{what}: no file written")

fmref.finish()
