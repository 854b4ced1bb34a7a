"""Monte Carlo credit-loss throughput: exposure-scenarios per second on 2 threads for a portfolio
of 1,000 exposures (one-factor Gaussian copula), finmaas against a NumPy peer doing the same work
in the same run.

The portfolio: 1,000 corporate exposures with PDs from 0.1% to 5%, LGDs from 0.2 to 0.8 and EADs
from 1,000 to 100,000, each with its IRB asset correlation R. finmaas runs `finmaas risk
--scenarios S --threads 2`; its rate is S x 1,000 over the Monte Carlo block's own time (which
includes sorting the sample and computing VaR/ES) and, separately, over the whole process. The
NumPy peer draws Z and the idiosyncratic normals with numpy.random.Generator (PCG64, ziggurat
normals) in chunks of 1,000 scenarios on 2 Python threads (NumPy releases the GIL while it fills
arrays, compares and multiplies), finds the defaults with one vectorised comparison, the losses
with a matrix-vector product, then sorts for the quantiles. Both report VaR 99.9%, which must
agree within the sampling error.

The goal of the issue: >= 10 million exposure-scenarios per second on 2 threads.

Run: python3 bench/risk_bench.py [--build build-risk] [--scenarios 200000] [--repeat 3]
"""
import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from statistics import NormalDist

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL = 10e6
N_EXPOSURES = 1000
THREADS = 2
ND = NormalDist()


def portfolio(path):
    rnd = np.random.default_rng(2026)
    pd = rnd.uniform(0.001, 0.05, N_EXPOSURES)
    lgd = rnd.uniform(0.2, 0.8, N_EXPOSURES)
    ead = rnd.uniform(1e3, 1e5, N_EXPOSURES)
    with open(path, "w") as f:
        f.write("id,segment,pd,lgd,ead,asset_class\n")
        for i in range(N_EXPOSURES):
            f.write("e%d,s%d,%.17g,%.17g,%.17g,corporate\n" % (i, i % 4, pd[i], lgd[i], ead[i]))
    return pd, lgd, ead


def irb_r(pd):
    w = (1 - np.exp(-50 * pd)) / (1 - math.exp(-50))
    return 0.12 * w + 0.24 * (1 - w)


def finmaas_run(exe, path, scenarios, seed):
    t0 = time.perf_counter()
    p = subprocess.run([exe, "risk", "--exposures", path, "--scenarios", str(scenarios), "--seed",
                        str(seed), "--threads", str(THREADS), "--levels", "0.99,0.999"],
                       capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    mc = json.loads(p.stdout)["monte_carlo"]
    return mc, wall


def numpy_run(pd, lgd, ead, scenarios, seed):
    """The same model, vectorised: default when eps < t - s Z, loss = defaults @ (LGD x EAD)."""
    rho = irb_r(pd)
    t = np.array([ND.inv_cdf(p) for p in pd]) / np.sqrt(1 - rho)
    s = np.sqrt(rho) / np.sqrt(1 - rho)
    w = lgd * ead
    chunk = 1000
    losses = np.empty(scenarios)
    starts = list(range(0, scenarios, chunk))
    streams = np.random.SeedSequence(seed).spawn(THREADS)

    def part(k):
        rng = np.random.Generator(np.random.PCG64(streams[k]))
        eps = np.empty((chunk, N_EXPOSURES))
        for a in starts[k::THREADS]:
            b = min(a + chunk, scenarios)
            z = rng.standard_normal(b - a)
            rng.standard_normal(out=eps[:b - a])
            losses[a:b] = (eps[:b - a] < t - np.outer(z, s)) @ w

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(part, range(THREADS)))
    srt = np.sort(losses)
    var = srt[math.ceil(0.999 * scenarios) - 1]
    return var, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--scenarios", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = os.path.join(ROOT, args.build, "finmaas")
    work = N_EXPOSURES * args.scenarios
    with tempfile.TemporaryDirectory(prefix="fm_risk_bench_") as tmp:
        path = os.path.join(tmp, "portfolio.csv")
        pd, lgd, ead = portfolio(path)
        fm_best = fm_wall = np_best = float("inf")
        fm_var = np_var = None
        for r in range(args.repeat):
            mc, wall = finmaas_run(exe, path, args.scenarios, 1 + r)
            if mc["seconds"] < fm_best:
                fm_best, fm_var = mc["seconds"], mc["levels"][1]
            fm_wall = min(fm_wall, wall)
            var, secs = numpy_run(pd, lgd, ead, args.scenarios, 1 + r)
            if secs < np_best:
                np_best, np_var = secs, var
    fm_rate, np_rate = work / fm_best, work / np_best
    print("portfolio: %d corporate exposures, %d scenarios, %d threads, best of %d" %
          (N_EXPOSURES, args.scenarios, THREADS, args.repeat))
    print("%-34s %14s %10s %12s" % ("", "exp-scen/s", "seconds", "VaR 99.9%"))
    print("%-34s %14.3g %10.3f %12.6g" % ("finmaas (Monte Carlo block)", fm_rate, fm_best,
                                          fm_var["var"]))
    print("%-34s %14.3g %10.3f" % ("finmaas (whole process)", work / fm_wall, fm_wall))
    print("%-34s %14.3g %10.3f %12.6g" % ("NumPy vectorised (2 threads)", np_rate, np_best, np_var))
    print("ratio finmaas / NumPy: %.1fx" % (fm_rate / np_rate))
    lo, hi = fm_var["var_ci95"]
    width = max(hi - lo, 1e-9)
    agree = abs(np_var - fm_var["var"]) <= 2 * width
    print("VaR 99.9%%: finmaas %.6g (95%% CI [%.6g, %.6g]), NumPy %.6g: %s" %
          (fm_var["var"], lo, hi, np_var, "agree" if agree else "DISAGREE"))
    print("%s finmaas %.3g exposure-scenarios/s on %d threads >= goal %.3g" %
          ("PASS" if fm_rate >= GOAL else "MISS", fm_rate, THREADS, GOAL))
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "risk_bench.json"), "w") as f:
        json.dump({"exposures": N_EXPOSURES, "scenarios": args.scenarios, "threads": THREADS,
                   "finmaas_rate": fm_rate, "finmaas_process_rate": work / fm_wall,
                   "numpy_rate": np_rate, "ratio": fm_rate / np_rate, "goal": GOAL,
                   "pass": fm_rate >= GOAL, "var999_finmaas": fm_var["var"],
                   "var999_numpy": np_var}, f, indent=2)
    return 0 if fm_rate >= GOAL and agree else 1


if __name__ == "__main__":
    sys.exit(main())
