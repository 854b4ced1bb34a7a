"""`finmaas fairness` on credit-g.csv against an independent computation. A logistic model is
trained without the protected columns (personal_status, age and the derived sex); sex is derived
from personal_status (values starting 'male' vs 'female'), age is banded (<25, 25-34, ..., 65+ by
default, and at explicit --bands). The decisions come from `finmaas predict` (P(good) >= the
threshold), and every metric is recomputed here with NumPy from the labels, decisions and groups:
rates, differences and ratios against the reference group, Fairlearn's max-min summaries, and the
selection-rate test (Fisher's exact test from log-factorials when an expected count is below 5,
else Pearson's chi-square with p = erfc(sqrt(X2 / 2))), all equal within 1e-9. Bad input must exit
with status 2 and one line on stderr."""
import math
import os
import subprocess

import numpy as np

import fmref

TOL = 1e-9
work = fmref.tempdir()
src = os.path.join(fmref.SHARED, "data", "credit-g.csv")
frame = fmref.read_csv(src)
frame["sex"] = np.where(frame["personal_status"].str.startswith("male"), "male", "female")
data = os.path.join(work, "credit-g-sex.csv")
frame.to_csv(data, index=False, na_rep="NA")
model = os.path.join(work, "g.fmm")
fmref.run("train", "--data", data, "--target", "class", "--model", "logistic",
          "--drop", "sex,personal_status,age", "--out", model, "--quiet")

out = fmref.run("predict", "--model", model, "--data", data)
p_good = np.array([float(line.split(",")[1]) for line in out.strip().splitlines()[1:]])
y = (frame["class"] == "good").to_numpy().astype(int)


def fisher(a, b, c, d):
    """Two-sided Fisher exact p-value (R's rule: tables no more likely than the observed one)."""
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    if min(r1, r2, c1, c2) == 0:
        return 1.0, 1.0
    lf = lambda n: math.lgamma(n + 1)
    base = lf(r1) + lf(r2) + lf(c1) + lf(c2) - lf(r1 + r2)
    logp = lambda x: base - lf(x) - lf(r1 - x) - lf(c1 - x) - lf(r2 - c1 + x)
    obs = logp(a)
    xs = np.arange(max(0, c1 - r2), min(r1, c1) + 1)
    lps = np.array([logp(int(x)) for x in xs])
    p = float(np.exp(lps[lps <= obs + math.log1p(1e-7)]).sum())
    return min(p, 1.0), math.exp(obs)


def chi_square(a, b, c, d):
    obs = np.array([[a, b], [c, d]], dtype=float)
    expected = obs.sum(1)[:, None] * obs.sum(0)[None, :] / obs.sum()
    x2 = float(((obs - expected) ** 2 / expected).sum())
    return math.erfc(math.sqrt(x2 / 2)), x2, expected


def rate(num, den):
    return num / den if den else float("nan")


def expected_metrics(groups, names, reference, d):
    """The fairness metrics of decisions d for row groups (an array of names)."""
    stats = {}
    for g in names:
        m = groups == g
        if not m.any():
            continue
        pos, neg = m & (y == 1), m & (y == 0)
        stats[g] = dict(count=int(m.sum()), positives=int(pos.sum()), selected=int(d[m].sum()),
                        true_positives=int(d[pos].sum()), false_positives=int(d[neg].sum()),
                        selection_rate=d[m].mean(), tpr=rate(d[pos].sum(), pos.sum()),
                        fpr=rate(d[neg].sum(), neg.sum()),
                        precision=rate(d[pos].sum(), d[m].sum()))
    if reference is None:
        reference = max(stats, key=lambda g: stats[g]["count"])
    ref = stats[reference]
    for g, s in stats.items():
        s["demographic_parity_difference"] = s["selection_rate"] - ref["selection_rate"]
        ratio = rate(s["selection_rate"], ref["selection_rate"])
        s["demographic_parity_ratio"] = s["disparate_impact_ratio"] = ratio
        s["four_fifths_violation"] = None if math.isnan(ratio) else bool(ratio < 0.8)
        dtpr, dfpr = s["tpr"] - ref["tpr"], s["fpr"] - ref["fpr"]
        s["equal_opportunity_difference"] = dtpr
        # Undefined (NaN) when either rate is: Python's max would drop a NaN given second.
        s["equalized_odds_difference"] = float(np.fmax(abs(dtpr), abs(dfpr))) \
            if not (math.isnan(dtpr) or math.isnan(dfpr)) else float("nan")
        s["average_odds_difference"] = (dtpr + dfpr) / 2
        if g == reference:
            s["test"], s["statistic"], s["p_value"] = None, None, None
            continue
        a, b = s["selected"], s["count"] - s["selected"]
        c, e = ref["selected"], ref["count"] - ref["selected"]
        p, x2, expected = chi_square(a, b, c, e)
        if (expected < 5).any():
            s["test"] = "fisher"
            s["p_value"], s["statistic"] = fisher(a, b, c, e)
        else:
            s["test"], s["p_value"], s["statistic"] = "chi-square", p, x2
    sr = np.array([s["selection_rate"] for s in stats.values()])
    tpr = np.array([s["tpr"] for s in stats.values()])
    fpr = np.array([s["fpr"] for s in stats.values()])
    summary = dict(demographic_parity_difference=sr.max() - sr.min(),
                   demographic_parity_ratio=sr.min() / sr.max(),
                   equalized_odds_difference=max(np.nanmax(tpr) - np.nanmin(tpr),
                                                 np.nanmax(fpr) - np.nanmin(fpr)))
    return reference, stats, summary


def same(got, want):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    if isinstance(want, (bool, str)):
        return got == want
    return got is not None and abs(got - want) <= TOL


def compare(label, attribute, groups, names, reference, d):
    ref, stats, summary = expected_metrics(groups, names, reference, d)
    fmref.check(attribute["reference"] == ref, f"{label}: reference group {ref}")
    fmref.check([g["group"] for g in attribute["groups"]] == list(stats),
                f"{label}: groups {list(stats)}")
    worst, bad = 0.0, []
    for g in attribute["groups"]:
        want = stats.get(g["group"], {})
        for key, value in want.items():
            if not same(g.get(key), value):
                bad.append(f"{g['group']}.{key}: {g.get(key)} vs {value}")
            elif isinstance(value, float) and not math.isnan(value):
                worst = max(worst, abs(g[key] - value))
    for key, value in summary.items():
        if not same(attribute["summary"][key], float(value)):
            bad.append(f"summary.{key}: {attribute['summary'][key]} vs {value}")
    fmref.check(not bad, f"{label}: every metric equals NumPy's within {TOL} "
                f"(max |diff| {worst:.3g}) {bad[:3]}")


def band_names(edges):
    names = [f"<{edges[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])]
    return names + [f"{edges[-1]}+"]


def banded(values, edges):
    names = band_names(edges)
    return np.array([names[int(np.searchsorted(edges, v, side="right"))] for v in values]), names


sex = frame["sex"].to_numpy()
age = frame["age"].to_numpy()
for threshold in (0.5, 0.7):
    # The printed probabilities have 9 digits: no row may sit so close to the threshold that
    # the rounding could flip its decision.
    fmref.check(np.abs(p_good - threshold).min() > 1e-8, f"no score within 1e-8 of {threshold}")
    d = (p_good >= threshold).astype(int)
    report = fmref.run_json("fairness", "--model", model, "--data", data, "--protected",
                            "sex,age", "--threshold", threshold)
    fmref.check(report["rows"] == len(frame) and report["positive"] == "good",
                f"threshold {threshold}: {report['rows']} rows, positive class good")
    attrs = {a["attribute"]: a for a in report["attributes"]}
    compare(f"sex at {threshold}", attrs["sex"], sex, ["female", "male"], None, d)
    groups, names = banded(age, [25, 35, 45, 55, 65])
    compare(f"age bands at {threshold}", attrs["age"], groups, names, None, d)

# Explicit reference groups and bands.
d = (p_good >= 0.5).astype(int)
report = fmref.run_json("fairness", "--model", model, "--data", data, "--protected", "sex,age",
                        "--reference", "sex=female", "--bands", "age=30,40,60",
                        "--reference", "age=<30")
attrs = {a["attribute"]: a for a in report["attributes"]}
compare("sex, reference female", attrs["sex"], sex, ["female", "male"], "female", d)
groups, names = banded(age, [30, 40, 60])
compare("age at 30,40,60, reference <30", attrs["age"], groups, names, "<30", d)
fmref.check(attrs["age"]["bands"] == [30, 40, 60], "the bands used are reported")

# Small groups: the 4 personal_status values make Fisher's test appear where counts are small
# (a subset of 60 rows).
small = os.path.join(work, "small.csv")
frame.iloc[:60].to_csv(small, index=False, na_rep="NA")
report = fmref.run_json("fairness", "--model", model, "--data", small, "--protected",
                        "personal_status")
status = frame["personal_status"].to_numpy()[:60]
y_all, y = y, y[:60]
compare("personal_status on 60 rows", report["attributes"][0], status, sorted(set(status)), None,
        d[:60])
fmref.check(any(g["test"] == "fisher" for g in report["attributes"][0]["groups"]),
            "Fisher's exact test is used for small counts")
y = y_all

# Missing protected values leave the row out of that attribute only, counted.
holes = frame.copy()
holes.loc[:9, "sex"] = np.nan
holed = os.path.join(work, "holes.csv")
holes.to_csv(holed, index=False, na_rep="NA")
report = fmref.run_json("fairness", "--model", model, "--data", holed, "--protected", "sex,age")
attrs = {a["attribute"]: a for a in report["attributes"]}
fmref.check(attrs["sex"]["rows"] == len(frame) - 10 and attrs["sex"]["rows_missing_group"] == 10
            and attrs["age"]["rows"] == len(frame), "missing protected values are counted")
compare("sex with 10 missing", attrs["sex"], np.where(holes["sex"].isna(), "", holes["sex"]),
        ["female", "male"], None, d)

# Malformed files: a ragged row, an empty file, a header only.
text = open(data).read().splitlines()
ragged, empty, header = (os.path.join(work, n) for n in ("ragged.csv", "empty.csv", "header.csv"))
open(ragged, "w").write("\n".join(text[:5] + [text[5] + ",extra"] + text[6:]) + "\n")
open(empty, "w").write("")
open(header, "w").write(text[0] + "\n")
for path in (ragged, empty, header):
    p = subprocess.run([fmref.FINMAAS, "fairness", "--model", model, "--data", path,
                        "--protected", "sex"], capture_output=True, text=True)
    fmref.check(p.returncode == 2 and p.stderr.count("\n") == 1,
                f"{os.path.basename(path)}: exit {p.returncode}, {p.stderr.strip()!r}")

# Bad input: status 2 and one line.
one_group = os.path.join(work, "one.csv")
frame[frame["sex"] == "male"].to_csv(one_group, index=False, na_rep="NA")
regression = os.path.join(work, "reg.fmm")
fmref.run("train", "--data", data, "--target", "duration", "--task", "regression",
          "--drop", "class", "--out", regression, "--quiet")
for args, what in [
    (["--protected", "nosuch"], "unknown protected column"),
    (["--protected", "sex", "--target", "nosuch"], "unknown target column"),
    (["--protected", "sex", "--reference", "sex=other"], "unknown reference group"),
    (["--protected", "sex", "--reference", "age=30"], "--reference for a column not protected"),
    (["--protected", "sex", "--bands", "sex=1,2"], "bands on a text column"),
    (["--protected", "age", "--bands", "age=40,30"], "bands that do not increase"),
    (["--protected", "sex", "--threshold", "2"], "threshold out of range"),
    (["--protected", "class"], "the target as protected column"),
    (["--protected", "sex,sex"], "a column named twice"),
]:
    p = subprocess.run([fmref.FINMAAS, "fairness", "--model", model, "--data", data, *args],
                       capture_output=True, text=True)
    fmref.check(p.returncode == 2 and p.stderr.count("\n") == 1 and not p.stdout,
                f"{what}: exit {p.returncode}, {p.stderr.strip()!r}")
for args, what in [
    (["--model", model, "--data", one_group, "--protected", "sex"], "one group only"),
    (["--model", regression, "--data", data, "--protected", "sex"], "a regression model"),
    (["--data", data, "--protected", "sex"], "no --model"),
]:
    p = subprocess.run([fmref.FINMAAS, "fairness", *args], capture_output=True, text=True)
    fmref.check(p.returncode == 2 and p.stderr.count("\n") == 1,
                f"{what}: exit {p.returncode}, {p.stderr.strip()!r}")

fmref.finish()
