"""fm_importance_compute (through tests/tools/importance_compute) against an independent
computation. Models are trained with the CLI on credit_data.csv (binary: logistic, gbt, mlp; with
an added constant column the model cannot use) and on credit-g.csv (regression of credit_amount,
multiclass housing). For each, the tool's JSON is checked as follows:
- the sample: distinct frame rows, in file order, only rows with a target, max_rows of them;
- the score: sklearn's roc_auc_score / accuracy_score / r2_score on `finmaas predict`'s
  predictions for the sampled rows;
- the grids: numpy's distinct values, or numpy.linspace between numpy.percentile 5 and 95 of the
  sampled rows' values; categorical grids are the model's training categories (finmaas inspect);
- partial dependence and ICE: CSVs written here with the feature set to each grid value for the
  sampled rows, scored by `finmaas predict`, averaged with NumPy; equal within 1e-6;
- permutation importance: the tool dumps the permutations it used; the raw column is permuted
  here, the rows scored by `finmaas predict`, the metric recomputed with scikit-learn, and mean
  and population standard deviation compared within 1e-6;
- the constant column has importance 0 and a flat partial dependence;
- determinism for a seed, and other permutations for another seed;
- bad input (missing target column, one class only, unknown class, no target values, a missing
  feature column, options out of range) exits 1 with the right code and a message naming it;
- with the default options the logistic model on credit_data takes well under a second."""
import json
import os
import subprocess

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

import fmref

TOL = 1e-6
TOOL = os.path.join(fmref.TOOLS, "importance_compute")
work = fmref.tempdir()
SHARED = os.path.join(fmref.SHARED, "data")


def tool(model, data, *args):
    p = subprocess.run([TOOL, model, data, *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def tool_json(model, data, *args):
    rc, out, err = tool(model, data, *args)
    if rc != 0:
        raise SystemExit(f"importance_compute {model} {data} {args} exited {rc}: {err}")
    return json.loads(out), err


def write_csv(frame, name):
    path = os.path.join(work, name)
    frame.to_csv(path, index=False, na_rep="NA", float_format="%.17g")
    return path


def predict(model, frame, name):
    """finmaas predict's output columns (p_<class>... or prediction) as a 2-D array."""
    path = write_csv(frame, name)
    out = os.path.join(work, name + ".pred.csv")
    fmref.run("predict", "--model", model, "--data", path, "--out", out)
    pred = pd.read_csv(out, keep_default_na=False)
    cols = [c for c in pred.columns if c.startswith("p_")] or ["prediction"]
    return pred[cols].to_numpy(dtype=float)


def model_prep(model):
    return {c["name"]: c for c in fmref.run_json("inspect", model)["preprocessing"]["columns"]}


def expected_grid(values, grid):
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    uniq = np.unique(v)
    if len(uniq) <= grid:
        return uniq
    return np.linspace(np.percentile(v, 5), np.percentile(v, 95), grid)


def output(task, pred):
    """Per row: P(positive) (binary), the value (regression), the class probabilities."""
    return pred[:, 1] if task == "binary" else (pred[:, 0] if task == "regression" else pred)


def metric(task, truth, out):
    if task == "binary":
        return roc_auc_score(truth, out)
    if task == "multiclass":
        return accuracy_score(truth, out.argmax(axis=1))
    return r2_score(truth, out)


def max_diff(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


grid_kinds = set()


def check_model(label, model, task, data_path, frame, target, classes, args):
    grid, nice, max_rows = args["grid"], args["ice"], args["max_rows"]
    result, _ = tool_json(model, data_path, "--repeats", args["repeats"], "--grid", grid, "--ice",
                          nice, "--max-rows", max_rows, "--seed", args["seed"],
                          "--dump-permutations")
    rows = np.array(result["sample_rows"], dtype=int)
    has_target = frame[target].notna().to_numpy()
    n = len(rows)
    fmref.check(n == min(max_rows, int(has_target.sum())) and result["rows"] == n,
                f"{label}: {n} rows used (max {max_rows}, {int(has_target.sum())} with a target)")
    fmref.check(bool(np.all(np.diff(rows) > 0)) and bool(has_target[rows].all()),
                f"{label}: sampled rows are distinct, in file order, all with a target")
    sample = frame.iloc[rows].reset_index(drop=True)
    features = [c for c in frame.columns if c != target]
    inputs = sample[features]
    if task == "regression":
        truth = sample[target].to_numpy(dtype=float)
    else:
        truth = sample[target].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
        if task == "binary":
            truth = (truth == 1).astype(int)

    base = output(task, predict(model, inputs, f"{label}_base.csv"))
    score = metric(task, truth, base)
    fmref.check(abs(result["score"] - score) <= TOL,
                f"{label}: {result['metric']} {result['score']:.9f} equals sklearn's {score:.9f}")
    fmref.check(result["metric"] == {"binary": "auc", "multiclass": "accuracy",
                                     "regression": "r2"}[task], f"{label}: metric name")

    # Permutation importance: every permuted copy in one file, scored once.
    perms = result["permutations"]
    blocks, keys = [], []
    for f, plist in perms.items():
        for r, perm in enumerate(plist):
            copy = inputs.copy()
            copy[f] = inputs[f].to_numpy()[np.array(perm, dtype=int)]
            blocks.append(copy)
            keys.append((f, r))
    scored = output(task, predict(model, pd.concat(blocks, ignore_index=True),
                                  f"{label}_perm.csv"))
    drops = {}
    for b, (f, r) in enumerate(keys):
        drops.setdefault(f, []).append(score - metric(task, truth, scored[b * n:(b + 1) * n]))
    worst = 0.0
    got = {e["feature"]: e for e in result["permutation_importance"]}
    fmref.check(list(got) == list(perms) and len(got) == len(features),
                f"{label}: one importance per feature, in column order")
    fmref.check(all(len(d) == args["repeats"] for d in drops.values()),
                f"{label}: {args['repeats']} permutations per feature")
    for f, d in drops.items():
        d = np.array(d)
        worst = max(worst, abs(got[f]["mean"] - d.mean()), abs(got[f]["std"] - d.std(ddof=0)))
    fmref.check(worst <= TOL, f"{label}: permutation importance mean/std equal NumPy's "
                f"recomputation (max |diff| {worst:.3g})")

    # Partial dependence and ICE.
    prep = model_prep(model)
    pd_entries = {e["feature"]: e for e in result["partial_dependence"]}
    fmref.check(list(pd_entries) == features, f"{label}: partial dependence for every feature")
    blocks, spans = [], []
    grid_ok = True
    for f, e in pd_entries.items():
        if prep[f]["type"] == "numeric":
            want = expected_grid(sample[f], grid)
            grid_kinds.add("distinct" if len(np.unique(sample[f].dropna())) <= grid else "spaced")
            ok = e["kind"] == "numeric" and max_diff(e["grid"], want) <= 1e-9 * max(
                1.0, float(np.max(np.abs(want))) if len(want) else 1.0)
        else:
            ok = e["kind"] == "categorical" and e["grid"] == prep[f]["categories"]
        if not ok:
            grid_ok = False
            print(f"  grid of {f}: {e['grid']}")
        for v in e["grid"]:
            copy = inputs.copy()
            copy[f] = v
            blocks.append(copy)
        spans.append((f, len(e["grid"])))
    fmref.check(grid_ok, f"{label}: grids equal NumPy's (distinct values or linspace of "
                f"percentiles 5..95) and the training categories")
    scored = output(task, predict(model, pd.concat(blocks, ignore_index=True), f"{label}_pd.csv"))
    start, worst_avg, worst_ice, shapes = 0, 0.0, 0.0, True
    keep = min(nice, n)
    for f, g in spans:
        e = pd_entries[f]
        curves = np.stack([scored[start + k * n:start + (k + 1) * n] for k in range(g)], axis=1)
        start += g * n
        avg = curves.mean(axis=0)
        ice = curves[:keep]
        shapes = shapes and len(e["ice"]) == keep
        worst_avg = max(worst_avg, max_diff(e["average"], avg))
        if keep:
            worst_ice = max(worst_ice, max_diff(e["ice"], ice))
    fmref.check(shapes, f"{label}: {keep} ICE curves per feature")
    fmref.check(worst_avg <= TOL, f"{label}: partial dependence equals the average of "
                f"finmaas predict (max |diff| {worst_avg:.3g})")
    fmref.check(worst_ice <= TOL, f"{label}: ICE curves equal finmaas predict "
                f"(max |diff| {worst_ice:.3g})")
    return result


# ---- data and models -------------------------------------------------------------------------
credit = fmref.read_csv(os.path.join(SHARED, "credit_data.csv"))
credit.insert(len(credit.columns), "Const", 1.0)
train_credit = write_csv(credit, "credit_const.csv")
# The explained file lacks the target on a few rows: they must be left out.
explained = credit.copy()
explained.loc[[3, 10, 4000], "Status"] = np.nan
explained_path = write_csv(explained, "credit_explained.csv")

german = fmref.read_csv(os.path.join(SHARED, "credit-g.csv"))
german_path = os.path.join(SHARED, "credit-g.csv")

models = {}
for family in ["logistic", "gbt", "mlp"]:
    path = os.path.join(work, f"{family}.fmm")
    extra = ["--epochs", "40"] if family == "mlp" else []
    fmref.run("train", "--data", train_credit, "--target", "Status", "--model", family,
              "--out", path, "--quiet", *extra)
    models[family] = path
reg = os.path.join(work, "reg.fmm")
fmref.run("train", "--data", german_path, "--target", "credit_amount", "--out", reg, "--quiet")
reg_gbt = os.path.join(work, "reg_gbt.fmm")
fmref.run("train", "--data", german_path, "--target", "credit_amount", "--model", "gbt",
          "--rounds", "50", "--out", reg_gbt, "--quiet")
multi = os.path.join(work, "multi.fmm")
fmref.run("train", "--data", german_path, "--target", "housing", "--epochs", "50", "--out", multi,
          "--quiet")

args = {"repeats": 3, "grid": 7, "ice": 5, "max_rows": 300, "seed": 7}
binary_classes = ["bad", "good"]
results = {}
for family, path in models.items():
    results[family] = check_model(f"binary {family}", path, "binary", explained_path, explained,
                                  "Status", binary_classes, args)
check_model("regression linear", reg, "regression", german_path, german, "credit_amount", None,
            dict(args, max_rows=250))
check_model("regression gbt", reg_gbt, "regression", german_path, german, "credit_amount", None,
            dict(args, grid=12, ice=0))
multi_classes = fmref.run_json("inspect", multi)["classes"]
check_model("multiclass softmax", multi, "multiclass", german_path, german, "housing",
            multi_classes, dict(args, max_rows=5000, ice=3))

fmref.check(grid_kinds == {"distinct", "spaced"},
            "numeric grids of both kinds (distinct values, spaced percentiles) were checked")

# Every row with a target, when max_rows allows: no sampling at all.
full, _ = tool_json(models["logistic"], explained_path, "--max-rows", 100000, "--repeats", 1,
                    "--grid", 2, "--ice", 0, "--dump-permutations")
fmref.check(full["sample_rows"] == [i for i in range(len(explained)) if i not in (3, 10, 4000)],
            "all rows with a target are used, in file order, when max_rows is large")

# A column the model cannot use: importance 0, flat partial dependence.
for family, result in results.items():
    const = [e for e in result["permutation_importance"] if e["feature"] == "Const"][0]
    curve = [e for e in result["partial_dependence"] if e["feature"] == "Const"][0]
    fmref.check(const["mean"] == 0 and const["std"] == 0 and curve["grid"] == [1],
                f"binary {family}: the constant column has importance 0 and a grid of one point")

# Determinism.
a, _ = tool_json(models["logistic"], explained_path, "--seed", 11, "--max-rows", 500)
b, _ = tool_json(models["logistic"], explained_path, "--seed", 11, "--max-rows", 500)
c, _ = tool_json(models["logistic"], explained_path, "--seed", 12, "--max-rows", 500)
fmref.check(a == b, "the same seed gives the same result")
fmref.check(a["permutation_importance"] != c["permutation_importance"],
            "another seed gives other permutations")

# ---- bad input -------------------------------------------------------------------------------


def expect_error(what, model, data, code, words, *opts):
    rc, out, err = tool(model, data, *opts)
    ok = rc == 1 and not out and err.startswith(f"error: {code}:") and all(w in err for w in words)
    fmref.check(ok, f"{what}: exit 1 with {code} naming {words} ({err.strip()})")


log = models["logistic"]
expect_error("missing target column", log, write_csv(credit.drop(columns=["Status"]), "nt.csv"),
             "EDATA", ["'Status'"])
expect_error("all one class", log, write_csv(credit[credit["Status"] == "good"], "one.csv"),
             "EDATA", ["'Status'", "good"])
unknown = credit.head(50).copy()
unknown.loc[7, "Status"] = "maybe"
expect_error("unknown class", log, write_csv(unknown, "unknown.csv"), "EDATA",
             ["'Status'", "maybe", "row 8"])
blank = credit.head(20).copy()
blank["Status"] = np.nan
blank["Status"] = blank["Status"].astype(object)
expect_error("no target values", log, write_csv(blank, "blank.csv"), "EDATA", ["'Status'"])
expect_error("missing feature column", log,
             write_csv(credit.drop(columns=["Income"]), "nofeature.csv"), "ENOTFOUND", ["'Income'"])
for opt, value, name in [("--repeats", 0, "repeats"), ("--repeats", 101, "repeats"),
                         ("--grid", 1, "grid"), ("--grid", 201, "grid"),
                         ("--ice", 1001, "ice_rows"), ("--max-rows", 0, "max_rows")]:
    expect_error(f"{opt} {value}", log, explained_path, "EINVAL", [name, str(value)], opt, value)
garbage = os.path.join(work, "garbage.csv")
with open(garbage, "w") as fp:
    fp.write('Status,Seniority\n"good,1\n')
rc, out, err = tool(log, garbage)
fmref.check(rc == 1 and err.startswith("error: "), f"malformed CSV is an error ({err.strip()})")

# ---- timing ----------------------------------------------------------------------------------
for family in ["logistic", "mlp", "gbt"]:
    best = min(json.loads(tool_json(models[family], explained_path, "--time")[1])["seconds"]
               for _ in range(3))
    print(f"  {family}: default options on credit_data: {best:.3f} s")
    if family == "logistic":
        fmref.check(best < 1.0, f"logistic with default options takes {best:.3f} s (< 1 s)")

fmref.finish()
