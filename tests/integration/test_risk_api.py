"""POST /api/apps/risk/portfolio against `finmaas risk` (issue 7, portfolio credit risk).

The real server on a loopback port (fmserve.py), keys per role, a durable audit log:
- the endpoint answers exactly what `finmaas risk` prints for the same exposures, options and
  seed (everything but the Monte Carlo's run time), for exposures as JSON objects and as CSV
  text, and with PDs from a registered binary model;
- bad bodies get 4xx with a JSON error: malformed JSON, the wrong shape, bad values (named),
  too many scenarios or exposure-scenarios, an unknown model, a CSV Content-Type;
- roles: consumers, modelers and validators may assess a portfolio, an auditor may not;
- every request is audited as risk.portfolio with its size in the detail.
"""
import csv
import io
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

PATH = "/api/apps/risk/portfolio"
CLASSES = ["corporate", "retail_mortgage", "retail_revolving", "retail_other"]


def strip_time(doc):
    mc = doc.get("monte_carlo")
    if isinstance(mc, dict):
        mc.pop("seconds", None)
    return doc


def portfolio(n=200, seed=3):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"id": "loan-%d" % i, "segment": rnd.choice(["sme", "cards", "homes"]),
                    "pd": round(rnd.uniform(0.0001, 0.2), 6),
                    "lgd": round(rnd.uniform(0.1, 0.9), 4),
                    "ead": round(rnd.uniform(100, 1e5), 2), "maturity": rnd.choice([1, 2.5, 4]),
                    "asset_class": rnd.choice(CLASSES)})
    return out


def to_csv(rows, header):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r[h] for h in header])
    return buf.getvalue()


def cli(path, *args):
    return strip_time(json.loads(fm.finmaas("risk", "--exposures", path, *map(str, args))))


OPTS = ["--scenarios", 20000, "--seed", 9, "--threads", 2, "--levels", "0.99,0.995,0.999",
        "--per-exposure"]
BODY_OPTS = {"scenarios": 20000, "seed": 9, "threads": 2, "levels": [0.99, 0.995, 0.999],
             "per_exposure": True}


def t_json_and_csv(C, c, s):
    rows = portfolio()
    header = ["id", "segment", "pd", "lgd", "ead", "maturity", "asset_class"]
    text = to_csv(rows, header)
    path = c.w.join("portfolio.csv")
    with open(path, "w") as f:
        f.write(text)
    want = cli(path, *OPTS)
    r = s.post(PATH, dict(BODY_OPTS, exposures=rows))
    C.check(r.status == 200 and strip_time(r.json()) == want,
            "JSON exposures: the answer equals `finmaas risk` for the same seed", r)
    r = s.post(PATH, dict(BODY_OPTS, csv=text))
    C.check(r.status == 200 and strip_time(r.json()) == want,
            "CSV exposures: the answer equals `finmaas risk` for the same seed", r)
    query = "?scenarios=20000&seed=9&threads=2&levels=0.99,0.995,0.999&per_exposure=true"
    r = s.post(PATH + query, text, headers={"Content-Type": "text/csv"})
    C.check(r.status == 200 and strip_time(r.json()) == want,
            "a text/csv body with the options in the query: the same answer", r)
    # Defaults, renamed columns, a given rho and floor, no Monte Carlo.
    text2 = to_csv([{"ID": r["id"], "PD": r["pd"], "EAD": r["ead"]} for r in rows],
                   ["ID", "PD", "EAD"])
    path2 = c.w.join("renamed.csv")
    with open(path2, "w") as f:
        f.write(text2)
    want2 = cli(path2, "--id-column", "ID", "--pd-column", "PD", "--ead-column", "EAD", "--lgd",
                0.3, "--asset-class", "retail_other", "--pd-floor", 0.0005, "--rho", 0.2,
                "--scenarios", 5000, "--seed", 4)
    r = s.post(PATH, {"csv": text2, "columns": {"id": "ID", "pd": "PD", "ead": "EAD"}, "lgd": 0.3,
                      "asset_class": "retail_other", "pd_floor": 0.0005, "rho": 0.2,
                      "scenarios": 5000, "seed": 4})
    C.check(r.status == 200 and strip_time(r.json()) == want2,
            "renamed columns, defaults, floor and rho: equal to the CLI", r)
    r = s.post(PATH, {"exposures": rows[:5], "scenarios": 0})
    C.check(r.status == 200 and "monte_carlo" not in r.json() and r.json()["exposures"] == 5,
            "scenarios 0: no Monte Carlo block", r)


def t_model(C, c, s):
    with open(fm.CREDIT, newline="") as f:
        rows = list(csv.DictReader(f))[:150]
    for i, r in enumerate(rows):
        r["ead"] = r["Amount"]
        r["segment"] = r["Home"]
    header = list(rows[0].keys())
    text = to_csv(rows, header)
    path = c.w.join("loans.csv")
    with open(path, "w") as f:
        f.write(text)
    want = cli(path, "--model", c.model, "--pd-from-model", *OPTS)
    r = s.post(PATH, dict(BODY_OPTS, csv=text, model="credit"))
    C.check(r.status == 200 and strip_time(r.json()) == want,
            "PDs from the registered model: equal to `finmaas risk --model`", r)
    r = s.post(PATH, dict(BODY_OPTS, csv=to_csv(rows, ["ead", "segment"]), model="credit"))
    C.check(r.status == 422 and "Seniority" in r.json().get("error", "") and
            b"/proc/" not in r.body,
            "model features missing from the CSV: 422 naming the column, not the temporary file",
            r)


def t_bad(C, c, s):
    good = portfolio(3)
    cases = [
        (b"{not json", 400, "malformed JSON"),
        ([1, 2], 400, "an array body"),
        ({"scenarios": 10}, 400, "neither exposures nor csv"),
        ({"exposures": good, "csv": "id,pd,ead\n"}, 400, "both exposures and csv"),
        ({"exposures": [dict(good[0], pd=1.5)]}, 422, "a PD of 1.5"),
        ({"exposures": [{"pd": 0.1}]}, 422, "no EAD"),
        ({"exposures": "x"}, 400, "exposures not an array"),
        ({"csv": "id,pd,ead\na,0.1\n"}, 422, "a ragged CSV row"),
        ({"csv": "id,pd,ead\n\"a,0.1,1\n"}, 400, "an unterminated quote (malformed CSV)"),
        ({"csv": ""}, 422, "an empty CSV"),
        ({"exposures": good, "scenarios": 20000000}, 400, "too many scenarios"),
        ({"exposures": good, "scenarios": 1.5}, 400, "fractional scenarios"),
        ({"exposures": good, "levels": [0.99, 1.0]}, 400, "a level of 1"),
        ({"exposures": good, "levels": []}, 400, "no levels"),
        ({"exposures": good, "threads": 64}, 400, "64 threads"),
        ({"exposures": good, "rho": -0.1}, 400, "a negative rho"),
        ({"exposures": good, "columns": {"pdx": "P"}}, 400, "an unknown column key"),
        ({"exposures": good, "asset_class": "bank"}, 400, "an unknown asset class"),
        ({"exposures": good, "model": "credit"}, 400, "a model without csv"),
        ({"csv": "id,pd,ead\na,0.1,1\n", "model": "nosuch"}, 404, "an unknown model"),
        ({"exposures": [dict(good[0]) for _ in range(2000)], "scenarios": 2000000}, 413,
         "over 2e9 exposure-scenarios"),
    ]
    for body, status, what in cases:
        r = s.post(PATH, body, headers={"Content-Type": "application/json"})
        err = r.json().get("error", "") if r.status >= 400 else ""
        C.check(r.status == status and err, "%s: %d with an error message" % (what, status), r)
    r = s.post(PATH + "?scenarios=lots", "id,pd,ead\na,0.1,1\n", headers={"Content-Type": "text/csv"})
    err = r.json().get("error", "") if r.status >= 400 else ""
    C.check(r.status == 400 and "scenarios" in err, "a text/csv body with a bad query: 400", r)
    r = s.post(PATH, "id,pd,ead\na,0.1,1\n", headers={"Content-Type": "text/plain"})
    C.check(r.status == 415, "a text/plain body: 415", r)


def t_roles_audit(C, c, s):
    K = c.keys
    body = {"exposures": portfolio(4), "scenarios": 2000, "seed": 5}
    for role in ("consumer", "modeler", "validator"):
        r = s.post(PATH, body, key=K[role], headers={"X-Request-Id": "risk-audit-" + role})
        C.check(r.status == 200, "a %s key assesses a portfolio: 200" % role, r)
    for role in ("auditor", "admin"):
        r = s.post(PATH, body, key=K[role])
        C.check(r.status == 403, "an %s key may not: 403" % role, r)
    r = s.post(PATH, body, key=None)
    C.check(r.status == 401, "no key: 401", r)
    r = s.get("/api/audit?limit=100000", key=K["auditor"])
    entries = r.json() if r.status == 200 else []
    mine = [e for e in entries if str(e.get("request_id", "")).startswith("risk-audit-")]
    C.check(len(mine) == 3 and all(e.get("action") == "risk.portfolio" and e.get("status") == 200
                                   and e.get("detail") == "exposures=4 scenarios=2000 seed=5"
                                   for e in mine),
            "each assessment is audited: action risk.portfolio, status 200, its size in the "
            "detail", mine or entries[-3:])


class Ctx:
    pass


def sections(C, w):
    c = Ctx()
    c.w = w
    c.home = w.join("home")
    os.makedirs(c.home)
    c.model = fm.train(fm.CREDIT, "Status", w.join("credit.fmm"), "--positive", "bad")
    fm.registry_add(c.home, "credit", c.model)
    c.keys = fm.home_keys(c.home)
    s = fm.Server(c.home, w.path, name="risk").start()
    C.section("JSON and CSV bodies equal the CLI", t_json_and_csv, C, c, s)
    C.section("PDs from a model", t_model, C, c, s)
    C.section("bad bodies", t_bad, C, c, s)
    C.section("roles and audit", t_roles_audit, C, c, s)
    fm.stop_checked(C, s)


def main():
    return fm.run_main("finmaas serve: portfolio credit risk", "fm-risk-", sections)


if __name__ == "__main__":
    sys.exit(main())
