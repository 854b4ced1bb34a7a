"""Integration test of POST /api/apps/loan/{model}[/versions/{version}]/decide (h_app_loan.c).

A scorecard fitted with `finmaas scorecard` (with an under-18 decline rule) is registered and
served by the real `finmaas serve`. Checks: for the same applicants (credit rows with missing
values, and an applicant under 18) the endpoint's score, PD, decision, points, reasons and fired
rules equal `finmaas decide`'s; the request id and the applicant id come back; decisions are
audited as loan.decide with the consumer's role; a consumer may decide, an auditor may not
(403); a model without a scorecard answers 422; bad bodies answer 400/422 with a JSON error;
the server keeps serving afterwards.
"""
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

NROWS = 40


def setup(C, w):
    c = fm.credit_context(w, NROWS)
    young = dict(c.rows[0], Age="17")
    c.rows.append(young)
    header = list(c.rows[0].keys())
    c.rows_csv = fm.write_csv(w.join("apps.csv"), ["id"] + header,
                              [["a%d" % i] + [r[h] for h in header]
                               for i, r in enumerate(c.rows)])
    policy = w.join("policy.json")
    with open(policy, "w") as f:
        json.dump({"approve_at": 600, "decline_below": 520,
                   "rules": [{"feature": "Age", "op": "<", "value": 18, "decision": "decline",
                              "reason": "applicant under 18"}]}, f)
    c.model = w.join("card.fmm")
    fm.finmaas("scorecard", "--data", fm.CREDIT, "--target", "Status", "--out", c.model,
               "--policy", policy, "--quiet")
    c.plain = fm.train(fm.CREDIT, "Status", w.join("plain.fmm"))
    c.home = w.join("home")
    os.makedirs(c.home)
    assert fm.registry_add(c.home, "card", c.model) == 1
    assert fm.registry_add(c.home, "plain", c.plain) == 1
    out = fm.finmaas("decide", "--model", c.model, "--data", c.rows_csv, "--keep", "id")
    c.want = list(csv.DictReader(out.splitlines()))
    s = fm.Server(c.home, w.path).start()
    for name, fn in [("CLI and API agree", t_agree), ("roles and audit", t_roles_audit),
                     ("bad requests", t_bad)]:
        C.section(name, fn, C, c, s)
    C.check(s.get("/v2/health/ready").status == 200, "the server still serves")
    fm.stop_checked(C, s)


def body_of(row, i):
    a = {}
    for k, v in row.items():
        if v == "NA":
            a[k] = None
        else:
            try:
                a[k] = float(v) if "." in v else int(v)
            except ValueError:
                a[k] = v
    return {"applicant": a, "id": "a%d" % i}


def t_agree(C, c, s):
    bad = 0
    for i, row in enumerate(c.rows):
        path = "/api/apps/loan/card/decide" if i % 2 else "/api/apps/loan/card/versions/1/decide"
        r = s.post(path, body_of(row, i), headers={"X-Request-Id": "loan-%d" % i})
        if r.status != 200:
            C.check(False, "row %d: 200" % i, r)
            bad += 1
            continue
        got, want = r.json(), c.want[i]
        ok = (got["id"] == want["id"] and got["request_id"] == "loan-%d" % i and
              got["model"] == "card" and got["version"] == 1 and
              math.isclose(got["score"], float(want["score"]), abs_tol=1e-9) and
              math.isclose(got["pd"], float(want["pd"]), abs_tol=1e-12) and
              got["decision"] == want["decision"] and
              all(math.isclose(p, float(want["points_" + k]), abs_tol=1e-9)
                  for k, p in got["points"].items()) and
              [x["feature"] for x in got["reasons"]] ==
              [want["reason_%d" % k] for k in range(1, 5) if want["reason_%d" % k]] and
              "; ".join(x["reason"] for x in got["rules_fired"]) == want["rules_fired"])
        if not ok:
            C.check(False, "row %d equals finmaas decide" % i, (got, want))
            bad += 1
        if ok and got["reasons"]:
            x = got["reasons"][0]
            ok = x["max_points"] > x["points"] and x["feature"] in x["text"]
            if not ok:
                C.check(False, "row %d: a reason names its feature and falls short" % i, x)
                bad += 1
    C.check(bad == 0, "%d applicants: score, PD, decision, points, reasons and rules equal "
            "finmaas decide's" % len(c.rows))
    last = s.post("/api/apps/loan/card/decide", body_of(c.rows[-1], 99)).json()
    C.check(last["decision"] == "decline" and last["rules_fired"] and
            last["rules_fired"][0]["reason"] == "applicant under 18",
            "the applicant under 18 declines by the rule", last)


def t_roles_audit(C, c, s):
    K = c.keys = fm.home_keys(c.home)
    body = body_of(c.rows[1], 1)
    r = s.post("/api/apps/loan/card/decide", body, headers={"X-Request-Id": "loan-audit-1"},
               key=K["consumer"])
    C.check(r.status == 200, "a consumer key decides: 200", r)
    r = s.post("/api/apps/loan/card/decide", body, key=K["auditor"])
    C.check(r.status == 403, "an auditor key may not decide: 403", r)
    r = s.post("/api/apps/loan/card/decide", body, key=None)
    C.check(r.status == 401, "no key: 401", r)
    r = s.get("/api/audit?model=card&limit=100000", key=K["auditor"])
    entries = r.json() if r.status == 200 else []
    mine = [e for e in entries if e.get("request_id") == "loan-audit-1"]
    C.check(len(mine) == 1 and mine[0].get("action") == "loan.decide" and
            mine[0].get("status") == 200 and mine[0].get("role") == "consumer",
            "the decision is audited as loan.decide with the consumer's role",
            mine or entries[-3:])


def t_bad(C, c, s):
    good = body_of(c.rows[1], 1)
    cases = [
        ("/api/apps/loan/plain/decide", good, 422, "a model without a scorecard"),
        ("/api/apps/loan/nosuch/decide", good, 404, "an unknown model"),
        ("/api/apps/loan/card/versions/9/decide", good, 404, "an unknown version"),
        ("/api/apps/loan/card/decide", {"nothing": 1}, 400, "no applicant"),
        ("/api/apps/loan/card/decide", {"applicant": [1, 2]}, 400, "an applicant array"),
        ("/api/apps/loan/card/decide", {"applicant": {"Age": {"x": 1}}}, 400, "an object value"),
        ("/api/apps/loan/card/decide", {"applicant": {"Age": "old"}}, 422, "text for a number"),
        ("/api/apps/loan/card/decide", dict(good, id=[1]), 400, "an id that is a list"),
        ("/api/apps/loan/card/decide", dict(good, id="x" * 500), 400, "an id too long"),
    ]
    for path, body, status, what in cases:
        r = s.post(path, body)
        err = ""
        try:
            err = r.json().get("error", "")
        except ValueError:
            pass
        C.check(r.status == status and err, "%s: %d with a JSON error" % (what, status), r)
    r = s.post("/api/apps/loan/card/decide", b'{"applicant": {"Age": 1',
               headers={"Content-Type": "application/json"})
    C.check(r.status == 400, "truncated JSON: 400", r)
    r = s.post("/api/apps/loan/card/decide", {"applicant": {}})
    C.check(r.status == 200 and r.json()["decision"] in ("approve", "refer", "decline"),
            "an empty applicant (all missing) is decided", r)


if __name__ == "__main__":
    sys.exit(fm.run_main("loan decisions over HTTP", "fm_loan_api_", setup))
