"""`finmaas invest` on the shared stock prices against independent recomputations.

- Returns, annualised return and volatility, Sharpe, Sortino, maximum drawdown (with its dates),
  beta and correlation: pandas/NumPy on the same closes.
- Parametric VaR/ES: the closed form with statistics.NormalDist; historical VaR: numpy.quantile
  with its default linear interpolation, ES the mean loss at or beyond it; Monte Carlo VaR/ES
  close to the closed form.
- Portfolios: minimum-variance and maximum-Sharpe weights against an exhaustive grid search over
  the bounded simplex (no SciPy): no grid point may do better than finmaas, and finmaas's weights
  lie next to the best grid point; every frontier point is no riskier than the grid's best of its
  return.
- Walk-forward: the forecast's figures are recomputed from its own series (accuracy, AUC by rank,
  RMSE) and its verdict must agree with them; no look-ahead: with the leak hook (the next day's
  return as a feature) the direction accuracy is far higher, while the real pipeline run on a file
  truncated at a day predicts every day up to it exactly as the full file does.
- Layouts: the wide eustockmarkets.csv; bad input exits 2 with one line.
"""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
from statistics import NormalDist

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
import fmref  # noqa: E402
from fmref import check  # noqa: E402

STOCKS = os.path.join(fmref.SHARED, "data", "stocks")
TICKERS = ["AAPL", "JPM", "MSFT", "XOM"]
FILES = [os.path.join(STOCKS, f"{t}_data.csv") for t in TICKERS]
EUSTOCK = os.path.join(fmref.SHARED, "data", "eustockmarkets.csv")
P = 252
RF = 0.02
TMP = tempfile.mkdtemp(prefix="fm_ref_invest_")


def near(a, b, tol):
    return abs(a - b) <= tol * max(1.0, abs(b))


def closes():
    frames = [pd.read_csv(f, parse_dates=["Date"]).set_index("Date")["Close"].rename(t)
              for f, t in zip(FILES, TICKERS)]
    return pd.concat(frames, axis=1, join="inner").sort_index()


def test_statistics():
    out = fmref.run_json("invest", "--prices", ",".join(FILES), "--index", "JPM",
                         "--risk-free", RF, "--levels", "0.95,0.99", "--mc-samples", 200000)
    px = closes()
    check(out["assets"] == TICKERS, "the four tickers in file order")
    check(out["dates"]["count"] == len(px), f"{len(px)} common dates")
    worst = 0.0
    r_index = px["JPM"].pct_change().dropna().to_numpy()
    for t in TICKERS:
        s = out["statistics"][t]
        p = px[t].to_numpy()
        r = p[1:] / p[:-1] - 1
        lr = np.log(p[1:] / p[:-1])
        sd = r.std(ddof=1)
        want = {
            "mean_return": r.mean(),
            "stdev_return": sd,
            "mean_log_return": lr.mean(),
            "annual_return": P * r.mean(),
            "annual_volatility": sd * math.sqrt(P),
            "cagr": (p[-1] / p[0]) ** (P / len(r)) - 1,
            "sharpe": (P * r.mean() - RF) / (sd * math.sqrt(P)),
            "downside_deviation": math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(P),
        }
        want["sortino"] = (P * r.mean() - RF) / want["downside_deviation"]
        for k, v in want.items():
            d = abs(s[k] - v) / max(1e-12, abs(v))
            worst = max(worst, d)
            check(d < 1e-10, f"{t} {k} {s[k]:.10g} = NumPy {v:.10g}")
        # maximum drawdown with pandas' running maximum
        series = px[t]
        dd = 1 - series / series.cummax()
        trough = dd.idxmax()
        peak = series[:trough].idxmax()
        rec = series[trough:][series[trough:] >= series[peak]]
        m = s["max_drawdown"]
        check(near(m["value"], dd.max(), 1e-12), f"{t} max drawdown {m['value']:.6f} = pandas")
        check(m["peak"] == str(peak.date()) and m["trough"] == str(trough.date()),
              f"{t} drawdown from {m['peak']} to {m['trough']}")
        check(m["recovery"] == (str(rec.index[0].date()) if len(rec) else None),
              f"{t} recovery {m['recovery']}")
        # beta and correlation against JPM
        cov = np.cov(r, r_index, ddof=1)
        check(near(s["beta"], cov[0, 1] / cov[1, 1], 1e-10), f"{t} beta {s['beta']:.6f}")
        check(near(s["correlation"], np.corrcoef(r, r_index)[0, 1], 1e-10),
              f"{t} correlation {s['correlation']:.6f}")
        # VaR and ES, losses positive
        losses = -r
        for entry in s["var"]:
            a = entry["level"]
            z = NormalDist().inv_cdf(a)
            var_n = -(r.mean() - sd * z)
            es_n = -(r.mean() - sd * NormalDist().pdf(z) / (1 - a))
            par = entry["parametric"]
            check(near(par["var"], var_n, 1e-12) and near(par["es"], es_n, 1e-12),
                  f"{t} parametric VaR/ES at {a}: {par['var']:.6f}/{par['es']:.6f} = closed form")
            q = np.quantile(losses, a)  # NumPy's default: linear interpolation
            es_h = losses[losses >= q].mean()
            hist = entry["historical"]
            check(near(hist["var"], q, 1e-12) and near(hist["es"], es_h, 1e-12),
                  f"{t} historical VaR/ES at {a}: {hist['var']:.6f}/{hist['es']:.6f} = numpy")
            mc = entry["monte_carlo"]
            check(abs(mc["var"] / var_n - 1) < 0.02 and abs(mc["es"] / es_n - 1) < 0.02,
                  f"{t} Monte Carlo VaR/ES at {a} within 2% of the closed form "
                  f"({mc['var']:.6f} vs {var_n:.6f})")
    print(f"  largest relative difference of the return figures: {worst:.3g}")
    # The index itself has beta 1; the same seed gives the same Monte Carlo figures.
    check(near(out["statistics"]["JPM"]["beta"], 1.0, 1e-12), "the index's own beta is 1")
    again = fmref.run_json("invest", "--prices", ",".join(FILES), "--index", "JPM",
                           "--risk-free", RF, "--mc-samples", 200000)
    check(again["statistics"] == out["statistics"], "the same seed gives the same figures")


def grid_simplex(n, step, lo, hi):
    """Every weight vector on a grid of the given step within [lo, hi] summing to 1."""
    k = int(round(1 / step))
    pts = []

    def rec(prefix, left):
        if len(prefix) == n - 1:
            w = prefix + [left]
            if all(lo - 1e-12 <= x * step <= hi + 1e-12 for x in w):
                pts.append(w)
            return
        for i in range(left + 1):
            rec(prefix + [i], left - i)

    rec([], k)
    return np.array(pts, dtype=float) * step


def test_portfolio():
    lo, hi = 0.0, 0.5
    out = fmref.run_json("invest", "--prices", ",".join(FILES), "--portfolio", "--bounds",
                         f"{lo},{hi}", "--frontier", 8, "--risk-free", RF, "--mc-samples", 0)
    pf = out["portfolio"]
    r = closes().pct_change().dropna().to_numpy()
    mu = r.mean(axis=0) * P
    cov = np.cov(r, rowvar=False, ddof=1) * P
    check(np.allclose(pf["expected_returns"], mu, rtol=1e-12), "annual expected returns = NumPy")
    check(np.allclose(pf["covariance"], cov, rtol=1e-12), "annual covariance = NumPy")
    grid = grid_simplex(4, 0.005, lo, hi)
    gvar = np.einsum("ij,jk,ik->i", grid, cov, grid)
    gret = grid @ mu
    gsharpe = (gret - RF) / np.sqrt(gvar)
    for name, score in (("min_variance", -gvar), ("max_sharpe", gsharpe)):
        w = np.array([pf[name]["weights"][t] for t in TICKERS])
        check(abs(w.sum() - 1) < 1e-10 and w.min() >= lo - 1e-12 and w.max() <= hi + 1e-12,
              f"{name} weights sum to 1 within [{lo}, {hi}]")
        mine = -(w @ cov @ w) if name == "min_variance" else (w @ mu - RF) / math.sqrt(w @ cov @ w)
        best = grid[np.argmax(score)]
        check(mine >= score.max() - 1e-12,
              f"{name}: no grid point does better ({mine:.8f} vs grid {score.max():.8f})")
        check(np.abs(w - best).max() <= 0.02,
              f"{name}: weights {np.round(w, 4).tolist()} next to the grid's {best.tolist()}")
    front = pf["frontier"]
    check(len(front) == 8, "8 frontier points")
    rets = [p["return"] for p in front]
    check(all(b >= a - 1e-12 for a, b in zip(rets, rets[1:])), "frontier returns increase")
    check(near(rets[0], pf["min_variance"]["return"], 1e-9), "the frontier starts at min variance")
    for p in front:
        w = np.array(p["weights"])
        check(near(w @ mu, p["return"], 1e-9) and near(math.sqrt(w @ cov @ w), p["volatility"],
                                                      1e-9), "frontier point's figures = NumPy")
        # the grid's least variance at (at least) this return is no lower than finmaas's
        ok = gret >= p["return"] - 1e-12
        if ok.any():
            check(p["volatility"] ** 2 <= gvar[ok].min() + 1e-12,
                  f"frontier at return {p['return']:.4f}: volatility {p['volatility']:.6f} <= "
                  f"grid {math.sqrt(gvar[ok].min()):.6f}")


def auc(score, label):
    s = pd.Series(score).rank().to_numpy()
    pos = label == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (s[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def forecast(files, *extra):
    return fmref.run_json("invest", "--prices", ",".join(files), "--forecast", "--mc-samples", 0,
                          "--threads", 2, *extra)


def test_forecast():
    out = forecast(FILES)
    px = closes()
    figures = []
    for t in TICKERS:
        f = out["forecast"][t]
        p = px[t]
        r = p.pct_change()
        dates = pd.to_datetime(f["series"]["dates"])
        nxt = r.loc[dates].to_numpy()
        up = (nxt > 0).astype(int)
        prob = np.array(f["series"]["p_up"])
        d = f["direction"]
        acc = np.mean((prob >= 0.5) == (up == 1))
        check(near(d["model"]["accuracy"], acc, 1e-12), f"{t} direction accuracy {acc:.4f}")
        check(near(d["model"]["auc"], auc(prob, up), 1e-9), f"{t} direction AUC by rank")
        # baselines recomputed: majority of the outcomes known before each day; today's direction
        prev = r.shift(1).loc[dates].to_numpy()
        rw = np.mean((prev > 0) == (up == 1))
        check(near(d["baselines"]["random_walk"]["accuracy"], rw, 1e-12),
              f"{t} random-walk baseline accuracy {rw:.4f}")
        all_up = (r.shift(-1) > 0).astype(float).to_numpy()
        i0 = p.index.get_loc(dates[0]) - 1  # the day whose features predict the first date
        maj = []
        for k in range(len(dates)):
            known = all_up[20:i0 + k]  # outcomes of feature days 20 .. t-1
            maj.append(1 if 2 * known.sum() >= len(known) else 0)
        maj_acc = np.mean(np.array(maj) == up)
        check(near(d["baselines"]["majority"]["accuracy"], maj_acc, 1e-12),
              f"{t} majority baseline accuracy {maj_acc:.4f}")
        best = max(d["baselines"]["majority"]["accuracy"],
                   d["baselines"]["random_walk"]["accuracy"])
        beats = d["model"]["accuracy"] > best
        check(d["beats_baseline"] == beats and d["verdict"].startswith(
            "the model beats" if beats else "the model does not beat the baseline"),
            f"{t} direction verdict: {d['verdict']}")
        v = f["volatility"]
        absr = np.abs(nxt)
        rmse = math.sqrt(np.mean((np.array(f["series"]["volatility"]) - absr) ** 2))
        check(near(v["model"]["rmse"], rmse, 1e-9), f"{t} volatility RMSE {rmse:.6f}")
        rw_rmse = math.sqrt(np.mean((np.abs(prev) - absr) ** 2))
        check(near(v["baselines"]["random_walk"]["rmse"], rw_rmse, 1e-9),
              f"{t} random-walk volatility RMSE {rw_rmse:.6f}")
        vbest = min(v["baselines"]["historical_mean"]["rmse"],
                    v["baselines"]["random_walk"]["rmse"])
        vbeats = v["model"]["rmse"] < vbest
        check(v["beats_baseline"] == vbeats and v["verdict"].startswith(
            "the model beats" if vbeats else "the model does not beat the baseline"),
            f"{t} volatility verdict: {v['verdict']}")
        figures.append((t, d["model"]["accuracy"], d["baselines"]["majority"]["accuracy"],
                        d["baselines"]["random_walk"]["accuracy"], d["model"]["auc"],
                        v["model"]["rmse"], v["baselines"]["historical_mean"]["rmse"],
                        v["baselines"]["random_walk"]["rmse"]))
    print("  ticker  accuracy  majority  rand.walk  AUC     | RMSE      hist.mean  rand.walk")
    for row in figures:
        print("  %-6s  %.4f    %.4f    %.4f     %.4f  | %.6f  %.6f   %.6f" % row)
    return out


def test_look_ahead(full):
    # The leak hook: the next day's return as a feature. Direction accuracy must jump.
    leaked = forecast(FILES[:2], "--test-leak-future")
    for t in TICKERS[:2]:
        honest = full["forecast"][t]["direction"]["model"]["accuracy"]
        cheat = leaked["forecast"][t]["direction"]["model"]["accuracy"]
        check(cheat > honest + 0.2 and cheat > 0.8,
              f"{t}: a leaked future return lifts accuracy from {honest:.3f} to {cheat:.3f}")
        check(leaked["settings"].get("leak_future") is True, "the leak is declared in settings")
    # The real pipeline: truncate each file after day 900; every prediction of a day up to then
    # must equal the full run's, bit for bit.
    cut = 900
    files = []
    for f in FILES[:2]:
        with open(f, newline="") as src:
            rows = list(csv.reader(src))
        path = os.path.join(TMP, os.path.basename(f))
        with open(path, "w", newline="") as dst:
            csv.writer(dst).writerows(rows[:cut + 1])
        files.append(path)
    short = forecast(files)
    for t in TICKERS[:2]:
        a, b = full["forecast"][t]["series"], short["forecast"][t]["series"]
        n = len(b["dates"])
        same = (a["dates"][:n] == b["dates"] and a["p_up"][:n] == b["p_up"]
                and a["volatility"][:n] == b["volatility"])
        check(n > 500 and same,
              f"{t}: the {n} predictions up to {b['dates'][-1]} do not depend on later prices")
        # and the last truncated day's forecast for the next day is the full run's prediction
        nd = short["forecast"][t]["next_day"]
        k = a["dates"].index(full_dates_after(t, nd["after"]))
        check(nd["p_up"] == a["p_up"][k], f"{t}: next-day forecast after {nd['after']} = full run")


def full_dates_after(ticker, date):
    px = closes()
    i = px.index.get_loc(pd.Timestamp(date))
    return str(px.index[i + 1].date())


def test_wide_and_errors():
    out = fmref.run_json("invest", "--prices", EUSTOCK, "--index", "DAX", "--mc-samples", 0)
    eu = pd.read_csv(EUSTOCK)
    check(out["assets"] == ["DAX", "SMI", "CAC", "FTSE"], "eustockmarkets: four indices")
    check(out["dates"]["count"] == len(eu), f"{len(eu)} rows")
    r = eu["SMI"].pct_change().dropna().to_numpy()
    rd = eu["DAX"].pct_change().dropna().to_numpy()
    s = out["statistics"]["SMI"]
    check(near(s["annual_volatility"], r.std(ddof=1) * math.sqrt(P), 1e-10), "SMI volatility")
    check(near(s["beta"], np.cov(r, rd)[0, 1] / rd.var(ddof=1), 1e-10), "SMI beta on DAX")
    bad_dir = os.path.join(TMP, "bad")
    os.makedirs(bad_dir, exist_ok=True)

    def write(name, text):
        path = os.path.join(bad_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    cases = [
        (["--prices", write("neg.csv", "date,close\n1,1\n2,-2\n3,3\n")], "must be positive"),
        (["--prices", write("txt.csv", "date,close\n1,1\n2,x\n3,3\n")], "not a number"),
        (["--prices", write("trunc.csv", "date,close\n1,1\n2,\"2\n")], "quote"),
        (["--prices", write("empty.csv", "")], "empty"),
        (["--prices", os.path.join(bad_dir, "missing.csv")], "missing.csv"),
        (["--prices", FILES[0], "--index", "SPY"], "index 'SPY'"),
        (["--prices", FILES[0], "--levels", "0.2"], "levels"),
        (["--prices", FILES[0], "--portfolio", "--bounds", "0,0.2", "--mc-samples", "0"],
         "cannot sum to 1"),
        (["--prices", FILES[0], "--model", "mlp"], "logistic or gbt"),
        (["--prices", FILES[0], "--forecast", "--min-train", "2000"], "forecasting needs"),
        (["--nonsense"], "nonsense"),
        ([], "--prices is required"),
    ]
    for args, needle in cases:
        p = subprocess.run([fmref.FINMAAS, "invest", *args], capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 2 and len(lines) == 1 and needle in lines[0] and not p.stdout,
              f"{' '.join(args)[-60:]!r} exits {p.returncode}: {lines[0] if lines else ''}")


def main():
    test_statistics()
    test_portfolio()
    full = test_forecast()
    test_look_ahead(full)
    test_wide_and_errors()
    fmref.finish()


if __name__ == "__main__":
    main()
