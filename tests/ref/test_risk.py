"""`finmaas risk` against independent computations (issue 7, portfolio credit risk).

- IRB capital: R, b, K, RWA and EL for a grid of PD, LGD, maturity and every asset class equal
  to the Basel formulas evaluated here with Python's statistics.NormalDist (the PD floor, the
  maturity clamp to [1, 5] and Basel III's 0.0005 floor included).
- Expected loss PD x LGD x EAD per segment equal to sums computed here.
- Monte Carlo: the 99.9% VaR of a homogeneous portfolio (PD 1%, rho 0.12, LGD 0.45, EAD 1) at
  10^6 scenarios within 2% of the Vasicek closed form LGD N((G(PD) + sqrt(rho) G(q)) /
  sqrt(1 - rho)) x total EAD. That formula is the limit of an infinitely granular portfolio: for
  1,000 exposures the exact quantile (computed here by integrating the binomial number of
  defaults over the factor with NumPy) is 1.9% above it, so the Vasicek check uses 5,000
  exposures, where the two differ by 0.5%, and the 1,000-exposure portfolio is checked against
  its exact finite quantile instead. ES >= VaR; the mean loss within 4 standard errors of EL;
  the sample identical for 1 and 2 threads.
- PDs from a model: each exposure's PD equals `finmaas predict`'s P(positive) on its row.
- Bad input: exit status 2 and one line on stderr.
"""
import csv
import json
import math
import os
import random
import subprocess
import sys
from statistics import NormalDist

sys.path.insert(0, os.path.dirname(__file__))
import fmref  # noqa: E402
from fmref import check  # noqa: E402

N = NormalDist()
G999 = N.inv_cdf(0.999)


def sanitized():
    try:
        with open(fmref.FINMAAS, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SLOW = sanitized()


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def irb(cls, pd, lgd, m, floor=0.0003):
    """The Basel IRB figures, written out from the Accord."""
    pd = max(pd, floor)
    if cls == "corporate":
        w = (1 - math.exp(-50 * pd)) / (1 - math.exp(-50))
        r = 0.12 * w + 0.24 * (1 - w)
    elif cls == "retail_mortgage":
        r = 0.15
    elif cls == "retail_revolving":
        r = 0.04
    else:
        w = (1 - math.exp(-35 * pd)) / (1 - math.exp(-35))
        r = 0.03 * w + 0.16 * (1 - w)
    if pd >= 1.0:  # defaulted: the loss is expected, no unexpected-loss capital
        return {"pd_floored": pd, "r": r, "b": 0.0, "k": 0.0}
    k = lgd * N.cdf((N.inv_cdf(pd) + math.sqrt(r) * G999) / math.sqrt(1 - r)) - pd * lgd
    b = 0.0
    if cls == "corporate":
        b = (0.11852 - 0.05478 * math.log(pd)) ** 2
        mm = min(max(m, 1.0), 5.0)
        k *= (1 + (mm - 2.5) * b) / (1 - 1.5 * b)
    return {"pd_floored": pd, "r": r, "b": b, "k": k}


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def test_irb_grid(tmp):
    classes = ["corporate", "retail_mortgage", "retail_revolving", "retail_other"]
    rows, want = [], []
    for cls in classes:
        for pd in (0.0001, 0.0003, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0):
            for lgd in (0.1, 0.45, 0.9):
                for m in (0.5, 1.0, 2.5, 4.0, 7.0):
                    ead = 1000.0 + len(rows)
                    rows.append([f"x{len(rows)}", cls, cls, pd, lgd, ead, m])
                    want.append((irb(cls, pd, lgd, m), pd, lgd, ead))
    path = write_csv(os.path.join(tmp, "grid.csv"),
                     ["id", "segment", "asset_class", "pd", "lgd", "ead", "maturity"], rows)
    for floor in (0.0003, 0.0005):
        out = fmref.run_json("risk", "--exposures", path, "--per-exposure", "--scenarios", 0,
                             "--pd-floor", floor)
        got = out["per_exposure"]
        worst = 0.0
        for g, (w, pd, lgd, ead) in zip(got, want):
            if floor != 0.0003:
                w = irb(g["asset_class"], pd, lgd, g["maturity"], floor)
            for key in ("pd_floored", "r", "b"):
                worst = max(worst, abs(g[key] - w[key]))
            worst = max(worst, abs(g["k"] - w["k"]))
            worst = max(worst, rel(g["rwa"], 12.5 * w["k"] * ead) if w["k"] else abs(g["rwa"]))
            worst = max(worst, rel(g["el"], w["pd_floored"] * lgd * ead))
        check(len(got) == len(want) and worst < 1e-10,
              f"IRB R, b, K, RWA, EL of {len(want)} exposures (4 classes x PD x LGD x M), floor "
              f"{floor}: largest difference {worst:.3g} from NormalDist")
    check("monte_carlo" not in out, "no Monte Carlo block with --scenarios 0")


def test_segments(tmp):
    rnd = random.Random(5)
    rows = []
    for i in range(3000):
        rows.append([f"l{i}", rnd.choice(["sme", "cards", "mortgages", "large"]),
                     round(rnd.uniform(0.001, 0.3), 6), round(rnd.uniform(0.05, 0.95), 4),
                     round(rnd.uniform(10, 1e6), 2)])
    path = write_csv(os.path.join(tmp, "seg.csv"), ["id", "segment", "pd", "lgd", "ead"], rows)
    out = fmref.run_json("risk", "--exposures", path, "--scenarios", 0)
    want = {}
    for _, seg, pd, lgd, ead in rows:
        s = want.setdefault(seg, [0, 0.0, 0.0])
        s[0] += 1
        s[1] += ead
        s[2] += max(pd, 0.0003) * lgd * ead
    ok = len(out["segments"]) == len(want)
    for s in out["segments"]:
        c, ead, el = want[s["segment"]]
        ok = ok and s["count"] == c and rel(s["ead"], ead) < 1e-12 and rel(s["el"], el) < 1e-12
    total_el = sum(v[2] for v in want.values())
    check(ok and rel(out["totals"]["el"], total_el) < 1e-12,
          f"EL = PD x LGD x EAD by segment ({len(want)} segments) and in total "
          f"({out['totals']['el']:.6g} vs {total_el:.6g})")
    # LGD and EAD from the defaults and a renamed column.
    path2 = write_csv(os.path.join(tmp, "ren.csv"), ["id", "PD", "Amount"],
                      [[r[0], r[2], r[4]] for r in rows[:50]])
    out2 = fmref.run_json("risk", "--exposures", path2, "--pd-column", "PD", "--ead-column",
                          "Amount", "--lgd", "0.4", "--scenarios", 0)
    el2 = sum(max(r[2], 0.0003) * 0.4 * r[4] for r in rows[:50])
    check(rel(out2["totals"]["el"], el2) < 1e-12,
          "--pd-column / --ead-column rename columns, --lgd supplies the LGD")


def finite_quantiles(n, pd, rho, lgd, levels):
    """The exact quantiles of the loss of n identical exposures: P(D <= k) = E_Z[Binom(k; n,
    p(Z))], p(Z) = N((G(pd) - sqrt(rho) Z) / sqrt(1 - rho)), integrated over a grid of Z."""
    import numpy as np

    z = np.linspace(-9, 9, 6001)
    w = np.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    arg = (N.inv_cdf(pd) - math.sqrt(rho) * z) / math.sqrt(1 - rho)
    p = 0.5 * np.array([math.erfc(-a / math.sqrt(2)) for a in arg])
    k = np.arange(n + 1)
    lc = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    with np.errstate(divide="ignore"):
        lp, lq = np.log(p)[:, None], np.log1p(-p)[:, None]
    cdf = np.cumsum(w @ np.exp(lc[None, :] + k[None, :] * lp + (n - k)[None, :] * lq))
    return [int(np.searchsorted(cdf, q)) * lgd for q in levels]


def test_monte_carlo(tmp):
    pd, rho, lgd = 0.01, 0.12, 0.45
    scenarios = 100000 if SLOW else 1000000
    tol = 0.03 if SLOW else 0.02
    for n in (5000, 1000):
        path = write_csv(os.path.join(tmp, f"hom{n}.csv"), ["id", "pd", "lgd", "ead"],
                         [[f"e{i}", pd, lgd, 1] for i in range(n)])
        out = fmref.run_json("risk", "--exposures", path, "--scenarios", scenarios, "--seed", 11,
                             "--threads", 2, "--rho", rho, "--levels", "0.99,0.999")
        mc = out["monte_carlo"]
        var = {lv["level"]: lv for lv in mc["levels"]}
        v999 = var[0.999]["var"]
        vasicek = lgd * N.cdf((N.inv_cdf(pd) + math.sqrt(rho) * N.inv_cdf(0.999)) /
                              math.sqrt(1 - rho)) * n
        rate = n * scenarios / mc["seconds"]
        print(f"  n={n}: VaR99.9 {v999:.4g} (95% CI {var[0.999]['var_ci95']}), Vasicek "
              f"{vasicek:.4g}, ratio {v999 / vasicek:.4f}; {rate / 1e6:.0f}M exposure-scenarios/s")
        if n == 5000:
            check(abs(v999 / vasicek - 1) < tol,
                  f"MC VaR 99.9% of {n} exposures at {scenarios} scenarios within {tol:.0%} of "
                  f"the Vasicek quantile ({v999:.5g} vs {vasicek:.5g})")
        else:
            exact = finite_quantiles(n, pd, rho, lgd, [0.99, 0.999])
            for q, e in zip((0.99, 0.999), exact):
                lo, hi = var[q]["var_ci95"]
                check(lo - lgd - 1e-9 <= e <= hi + lgd + 1e-9 and abs(var[q]["var"] / e - 1) < tol,
                      f"MC VaR {q} of {n} exposures {var[q]['var']:.5g} (CI [{lo:.5g}, "
                      f"{hi:.5g}]) vs the exact finite-portfolio quantile {e:.5g}")
        for q, lv in var.items():
            check(lv["es"] >= lv["var"] and lv["es_std_error"] > 0 and lv["var_ci95"][0] <=
                  lv["var"] <= lv["var_ci95"][1], f"n={n} level {q}: ES {lv['es']:.5g} >= VaR "
                  f"{lv['var']:.5g}, VaR inside its interval, ES with a standard error")
        el = pd * lgd * n
        check(abs(mc["mean"] - el) < 4 * mc["mean_std_error"] and rel(mc["el"], el) < 1e-12,
              f"n={n}: mean loss {mc['mean']:.5g} within 4 standard errors "
              f"({mc['mean_std_error']:.3g}) of EL {el:.5g}")
    # The same sample for any number of threads; another seed another sample.
    path = os.path.join(tmp, "hom1000.csv")
    runs = [fmref.run_json("risk", "--exposures", path, "--scenarios", 30000, "--seed", s,
                           "--threads", t)["monte_carlo"] for s, t in ((4, 1), (4, 2), (5, 2))]
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "threads")} for r in runs]
    check(strip[0] == strip[1] and strip[0] != strip[2],
          "Monte Carlo identical for 1 and 2 threads with one seed, different with another")


def test_model_pd(tmp):
    data = os.path.join(fmref.SHARED, "data", "credit_data.csv")
    model = os.path.join(tmp, "credit.fmm")
    fmref.run("train", "--data", data, "--target", "Status", "--positive", "bad", "--out", model,
              "--model", "mlp", "--hidden", "8", "--epochs", "3", "--seed", "1", "--quiet")
    with open(data, newline="") as f:
        rows = list(csv.DictReader(f))[:300]
    header = list(rows[0].keys()) + ["ead", "segment"]
    path = write_csv(os.path.join(tmp, "loans.csv"), header,
                     [list(r.values()) + [r["Amount"], r["Home"]] for r in rows])
    out = fmref.run_json("risk", "--exposures", path, "--model", model, "--pd-from-model",
                         "--per-exposure", "--scenarios", 0)
    pred = list(csv.DictReader(fmref.run("predict", "--model", model, "--data", path)
                               .splitlines()))
    worst = max(abs(e["pd"] - float(p["p_bad"])) for e, p in zip(out["per_exposure"], pred))
    check(len(pred) == len(out["per_exposure"]) == 300 and worst < 1e-9,
          f"--model: PD = the model's P(bad) for each of 300 rows (largest difference "
          f"{worst:.3g})")


def test_bad_input(tmp):
    good = write_csv(os.path.join(tmp, "good.csv"), ["id", "pd", "ead"], [["a", 0.1, 5]])
    cases = [
        (["--exposures", write_csv(os.path.join(tmp, "b1.csv"), ["id", "pd", "ead"],
                                   [["a", 1.5, 5]])], "'pd' = 1.5"),
        (["--exposures", write_csv(os.path.join(tmp, "b2.csv"), ["id", "pd"], [["a", 0.1]])],
         "'ead'"),
        (["--exposures", write_csv(os.path.join(tmp, "b3.csv"), ["id", "pd", "ead", "asset_class"],
                                   [["a", 0.1, 5, "sovereign"]])], "sovereign"),
        (["--exposures", write_csv(os.path.join(tmp, "b4.csv"), ["id", "pd", "ead"],
                                   [["a", 0.1]])], "fields"),
        (["--exposures", write_csv(os.path.join(tmp, "b5.csv"), ["id", "pd", "ead"], [])],
         "no exposures"),
        (["--exposures", good, "--levels", "0.99,1.5"], "levels"),
        (["--exposures", good, "--scenarios", "-3"], "scenarios"),
        (["--exposures", good, "--rho", "1"], "rho"),
        (["--exposures", good, "--pd-floor", "0"], "pd-floor"),
        (["--exposures", good, "--pd-from-model"], "--model"),
        (["--exposures", good, "--asset-class", "bank"], "asset-class"),
        (["--exposures", good, "--bogus"], "bogus"),
        ([], "--exposures"),
    ]
    for args, want in cases:
        p = subprocess.run([fmref.FINMAAS, "risk", *args], capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 2 and len(lines) == 1 and want in p.stderr,
              f"finmaas risk {' '.join(a if len(a) < 30 else '...' for a in args)}: exit 2, one "
              f"line naming {want!r} (got {p.returncode}: {p.stderr.strip()[:120]!r})")
    p = subprocess.run([fmref.FINMAAS, "risk", "--exposures", os.path.join(tmp, "absent.csv")],
                       capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    check(p.returncode != 0 and len(lines) == 1 and "absent.csv" in p.stderr,
          "a missing file fails with one line naming it")
    out_path = os.path.join(tmp, "r.json")
    fmref.run("risk", "--exposures", good, "--scenarios", 1000, "--out", out_path)
    with open(out_path) as f:
        check(json.load(f)["exposures"] == 1, "--out writes the JSON to a file")


def main():
    tmp = fmref.tempdir()
    test_irb_grid(tmp)
    test_segments(tmp)
    test_bad_input(tmp)
    test_monte_carlo(tmp)
    test_model_pd(tmp)
    fmref.finish()


if __name__ == "__main__":
    main()
