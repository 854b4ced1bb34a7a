"""POST /api/apps/invest/analyze against `finmaas invest` on the same prices.

- The endpoint answers exactly what the CLI prints for the same inputs: statistics with an index,
  portfolios with bounds and a frontier, a walk-forward forecast (two tickers), and the wide
  eustockmarkets.csv sent as rows ("prices") rather than series.
- Bad bodies get a 4xx with a JSON error: not JSON, no prices, both forms, bad numbers, unknown
  index, bad settings, a forecast beyond the HTTP limits, too many prices; a GET is 405, a
  request without a key 401, an auditor's key 403.
- Every request is audited as invest.analyze with the caller's role and status; a successful
  one's detail names the number of tickers and dates, its large reply recorded by digest.
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

SHARED = os.environ.get("FM_SHARED", os.path.join(fm.ROOT, "..", "shared"))
STOCKS = os.path.join(SHARED, "data", "stocks")
EUSTOCK = os.path.join(SHARED, "data", "eustockmarkets.csv")
PATH = "/api/apps/invest/analyze"


def stock_file(t):
    return os.path.join(STOCKS, "%s_data.csv" % t)


def series_of(tickers):
    """{"T": {"dates", "close", "volume"}} read from the Kaggle files as finmaas reads them."""
    out = {}
    for t in tickers:
        with open(stock_file(t), newline="") as f:
            rows = list(csv.DictReader(f))
        out[t] = {"dates": [r["Date"] for r in rows], "close": [float(r["Close"]) for r in rows],
                  "volume": [float(r["Volume"]) for r in rows]}
    return out


def cli(*args):
    return json.loads(fm.finmaas("invest", *map(str, args)))


def same(C, got, want, what):
    C.check(got == want, what, json.dumps(diff(got, want))[:600])


def diff(a, b, path=""):
    """The first place two JSON values differ, for the failure message."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return {"at": path + "/" + k, "missing in": "reply" if k not in a else "cli"}
            d = diff(a[k], b[k], path + "/" + k)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return {"at": path, "lengths": [len(a), len(b)]}
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b else {"at": path, "reply": a, "cli": b}


def t_equal_cli(C, s):
    tickers = ["AAPL", "JPM", "MSFT", "XOM"]
    files = ",".join(stock_file(t) for t in tickers)
    body = {"series": series_of(tickers), "index": "JPM", "risk_free": 0.02,
            "levels": [0.95, 0.99, 0.995], "mc_samples": 20000, "seed": 7, "portfolio": True,
            "bounds": [0.05, 0.6], "frontier": 6}
    r = s.post(PATH, body, headers={"X-Request-Id": "invest-1"})
    C.check(r.status == 200, "statistics and portfolio: 200", r)
    want = cli("--prices", files, "--index", "JPM", "--risk-free", 0.02, "--levels",
               "0.95,0.99,0.995", "--mc-samples", 20000, "--seed", 7, "--portfolio", "--bounds",
               "0.05,0.6", "--frontier", 6)
    if r.status == 200:
        same(C, r.json(), want, "statistics and portfolio equal finmaas invest's")
    # forecasting, two tickers
    body = {"series": series_of(["AAPL", "XOM"]), "forecast": True, "retrain_every": 42,
            "mc_samples": 0}
    r = s.post(PATH, body, timeout=300)
    C.check(r.status == 200, "forecast: 200", r)
    want = cli("--prices", stock_file("AAPL") + "," + stock_file("XOM"), "--forecast",
               "--retrain-every", 42, "--mc-samples", 0)
    if r.status == 200:
        got = r.json()
        same(C, got, want, "the forecast equals finmaas invest --forecast's")
        C.check(all("verdict" in got["forecast"][t]["direction"] for t in ("AAPL", "XOM")),
                "the forecast carries its verdict against the baselines")
    # the wide file sent as rows
    with open(EUSTOCK, newline="") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    prices = [{"date": row[4], "ticker": name, "close": float(row[k])}
              for row in data for k, name in enumerate(header[:4])]
    r = s.post(PATH, {"prices": prices, "index": "DAX", "mc_samples": 1000})
    C.check(r.status == 200, "eustockmarkets as rows: 200", r)
    want = cli("--prices", EUSTOCK, "--index", "DAX", "--mc-samples", 1000)
    if r.status == 200:
        same(C, r.json(), want, "rows of eustockmarkets.csv equal the CLI on the wide file")


def t_bad_bodies(C, s):
    good = {"AAPL": {"close": [1, 2, 3, 4]}}
    big = {"series": {"A": {"close": [1.0 + (i % 7) for i in range(250001)]}}}
    cases = [
        (b"{not json", 400, "malformed JSON"),
        ({}, 400, "no prices"),
        ({"series": good, "prices": []}, 400, "both series and prices"),
        ({"series": {"AAPL": {"close": [1, "x", 3]}}}, 400, "a close that is not a number"),
        ({"series": {"AAPL": {"close": [1, 2, -3]}}}, 422, "a negative close"),
        ({"series": {"AAPL": {"close": [1, 2]}}}, 422, "two prices"),
        ({"series": {"AAPL": {"close": [1, 2, 3], "dates": ["a", "a", "b"]}}}, 422,
         "a date twice"),
        ({"prices": [{"date": "d", "close": 1}, 3]}, 400, "a row that is not an object"),
        ({"series": good, "index": "SPY"}, 400, "an unknown index"),
        ({"series": good, "levels": [1.5]}, 400, "a level above 1"),
        ({"series": good, "bounds": [0, 0.2, 1]}, 400, "three bounds"),
        ({"series": dict(good, B={"close": [2, 3, 4, 5]}), "portfolio": True, "bounds": [0.6, 1]},
         400, "bounds whose lower sum is above 1"),
        ({"series": good, "model": "mlp"}, 400, "an unknown model"),
        ({"series": good, "forecast": "yes"}, 400, "forecast not a boolean"),
        ({"series": good, "mc_samples": 10 ** 6}, 400, "too many Monte Carlo draws"),
        ({"series": good, "forecast": True}, 422, "too short a history to forecast"),
        ({"series": {"T%d" % i: {"close": [1, 2, 3]} for i in range(9)}, "forecast": True}, 400,
         "forecasting more than 8 tickers"),
        (big, 413, "more than 250,000 prices"),
    ]
    for body, status, what in cases:
        r = s.post(PATH, body, headers={"Content-Type": "application/json"})
        err = r.json().get("error") if r.body.startswith(b"{") else None
        C.check(r.status == status and err, "%s: %d (%s)" % (what, status, err), r)
    r = s.get(PATH)
    C.check(r.status == 405, "GET: 405", r)
    r = s.post(PATH, {"series": good}, key=None)
    C.check(r.status == 401, "no key: 401", r)
    r = s.post(PATH, {"series": good}, key=s.keys["auditor"])
    C.check(r.status == 403, "an auditor's key: 403", r)
    r = s.post(PATH, {"series": good}, key=s.keys["modeler"])
    C.check(r.status == 200, "a modeler's key: 200", r)


def t_audit(C, s):
    r = s.get("/api/audit?limit=100000", key=s.keys["auditor"])
    C.check(r.status == 200, "the audit log is readable", r)
    entries = [e for e in (r.json() if r.status == 200 else []) if e.get("action") ==
               "invest.analyze"]
    first = [e for e in entries if e.get("request_id") == "invest-1"]
    C.check(len(first) == 1 and first[0].get("status") == 200 and
            first[0].get("role") == "consumer" and
            first[0].get("detail") == "assets=4 dates=1260 forecast=0 portfolio=1",
            "the analysis is audited: invest.analyze, 200, consumer, tickers and dates", first)
    C.check(first and "blake2b" in (first[0].get("output") or ""),
            "its large reply is recorded by digest", first[:1])
    C.check(any(e.get("status") == 400 for e in entries) and
            any(e.get("status") == 413 for e in entries) and
            any(e.get("status") == 422 for e in entries),
            "refused bodies are audited with their status", [e.get("status") for e in entries])


def sections(C, w):
    home = w.join("home")
    os.makedirs(home)
    s = fm.Server(home, w.path, name="invest").start()
    C.section("the endpoint equals the CLI", t_equal_cli, C, s)
    C.section("bad bodies", t_bad_bodies, C, s)
    C.section("audit", t_audit, C, s)
    fm.stop_checked(C, s)


def main():
    return fm.run_main("POST /api/apps/invest/analyze", "fm-invest-", sections)


if __name__ == "__main__":
    sys.exit(main())
