"""`finmaas serve`: datasets and training jobs over the API, end to end.

  - Datasets: credit_data.csv uploaded (streamed, as a plain POST and chunked); its profile is
    checked against pandas/NumPy computed here (rows, types, missing shares, distinct counts,
    min/max/mean/std and the p01..p99 quantiles, the ten most frequent categories); PII columns
    carry no values; type overrides by `types=` and by a JSON `schema=`; list, get, delete, 409 on
    a taken name and `replace=true`.
  - Bad uploads: a ragged row and an unterminated quote (400 naming line and column), a body over
    --max-dataset-bytes (413, declared and chunked), bad names with ".." and "/" (400), no name,
    a wrong Content-Type: each leaves no file behind and the server keeps serving.
  - A job with a small search (3 candidates, 3 folds, logistic and MLP, 10 epochs): 202, its
    server-sent events followed to the end (parsed: ids consecutive, queued ... succeeded), the
    leaderboard, the registered version labelled staging and uploaded by the modeler's key, its
    predictions through V2 infer equal to `finmaas predict` on the same rows and model file, the
    leaderboard in the model's metadata; the events replayed after the end and from
    Last-Event-ID.
  - Bad jobs: unknown dataset (404), a bad spec, an unknown key, a target not in the dataset, a
    bad model name (400 naming the field); nothing recorded.
  - Roles: consumers may neither upload nor start jobs (403); auditors and validators read;
    admins upload but do not start jobs; a key scoped to other models sees neither the dataset
    nor the job; uploads and jobs are audited with the dataset and job named.
  - Cancel: a queued job at once (200), a running one at the next check (202, then cancelled);
    a full queue answers 503 with Retry-After.
  - Prediction latency while a job runs (with a stalled and a vanished event-stream client): every
    infer answers within a second.
  - Encryption at rest: with FINMAAS_MASTER_KEY_FILE both stored files start with FMENC1 and
    hold no 32-byte window of the CSV; the profile reads back and a job trains on the dataset;
    a server started without the key, or with another, refuses the dataset (403, naming it).
  - Restart: SIGTERM while a job runs ends its event stream and the job is recorded failed,
    "interrupted by shutdown"; SIGKILL while one runs and one waits: after the restart both are
    failed, "interrupted by a server restart".

Every server is checked for a clean exit and for sanitizer reports in its stderr.
Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_jobs.py
"""
import http.client
import json
import os
import re
import socket
import sys
import time
import urllib.parse

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

CSV = {"Content-Type": "text/csv"}
LIMIT = 2_000_000  # --max-dataset-bytes of the servers here
QUANTILES = {"p01": 0.01, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p99": 0.99}
SMALL_JOB = {"target": "Status", "positive": "bad", "validation": {"folds": 3, "holdout": 0.2},
             "search": {"budget": 3, "seed": 7},
             "space": {"family": ["logistic", "mlp"], "epochs": [10], "hidden": [[8]],
                       "learning_rate": [0.003]},
             "importance_repeats": 0}
# Thousands of short fits: runs for minutes unless cancelled; a cancel is seen within one fit.
LONG_JOB = {"target": "Status", "positive": "bad", "validation": {"folds": 5},
            "search": {"budget": 2000},
            "space": {"family": ["mlp"], "hidden": [[8]], "epochs": [20],
                      "learning_rate": {"min": 0.0005, "max": 0.05, "log": True}},
            "importance_repeats": 0}
SERVER_ARGS = ["--job-workers", "1", "--job-queue", "2", "--max-dataset-bytes", str(LIMIT)]


def setup(w):
    c = fm.credit_context(w, 60)
    c.home = w.join("home")
    os.makedirs(c.home)
    c.keys = fm.home_keys(c.home)
    c.scoped = fm.create_key(c.home, "modeler", models="other-model", name="scoped-modeler")
    c.key_ids = {k["name"]: k["id"] for k in
                 json.loads(fm.finmaas("keys", "list", "--home", c.home, "--json"))}
    c.csv_bytes = open(fm.CREDIT, "rb").read()
    return c


def start(c, name):
    return fm.Server(c.home, c.w.path, name=name, args=SERVER_ARGS).start()


def error_of(r):
    try:
        doc = r.json()
    except ValueError:
        return ""
    return doc.get("error", "") if isinstance(doc, dict) else ""


def datasets_dir(c):
    d = os.path.join(c.home, "datasets")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def upload(s, c, name, body, key="modeler", query="", headers=None):
    path = "/api/datasets?name=%s%s" % (name, query)
    return s.request("POST", path, body, headers=dict(headers or CSV), key=c.keys[key])


def chunked_upload(s, c, name, chunks, key="modeler"):
    conn = s.connection(60)
    h = dict(CSV)
    h.update(fm.bearer(c.keys[key]))
    h["Transfer-Encoding"] = "chunked"
    try:
        conn.request("POST", "/api/datasets?name=%s" % name, body=iter(chunks), headers=h,
                     encode_chunked=True)
        r = conn.getresponse()
        return fm.Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except (BrokenPipeError, ConnectionResetError) as e:
        return fm.Response(0, {}, str(e).encode())
    finally:
        conn.close()


def a(role):
    return ("an " if role[0] in "aeiou" else "a ") + role


def ready(s):
    return s.get("/v2/health/ready").status == 200


# ---- datasets --------------------------------------------------------------------------------


def first_seen(series):
    return {v: i for i, v in enumerate(series.dropna().drop_duplicates())}


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))


def check_profile(C, prof, df, pii=()):
    C.equal(prof.get("rows"), len(df), "profile: rows = pandas")
    C.equal(prof.get("columns"), len(df.columns), "profile: columns = pandas")
    cols = {p["name"]: p for p in prof.get("profile", [])}
    C.equal(list(cols), list(df.columns), "profile: one entry per column, in file order")
    bad = []
    for name in df.columns:
        s, p = df[name], cols.get(name, {})
        numeric = pd.api.types.is_numeric_dtype(s)
        if p.get("type") != ("numeric" if numeric else "categorical"):
            bad.append((name, "type", p.get("type")))
        if p.get("missing") != int(s.isna().sum()) or not close(p.get("missing_share"),
                                                                float(s.isna().mean())):
            bad.append((name, "missing", p.get("missing"), p.get("missing_share")))
        if p.get("distinct") != int(s.nunique()):
            bad.append((name, "distinct", p.get("distinct"), int(s.nunique())))
        if name in pii:
            leaked = [k for k in ("min", "max", "mean", "std", "quantiles", "top") if k in p]
            if leaked or p.get("pii") is not True:
                bad.append((name, "pii column shows", leaked))
            continue
        if numeric:
            v = s.dropna().to_numpy(dtype=float)
            want = {"min": v.min(), "max": v.max(), "mean": v.mean(), "std": v.std(ddof=1)}
            for k, x in want.items():
                if not close(p.get(k), float(x)):
                    bad.append((name, k, p.get(k), float(x)))
            q = p.get("quantiles", {})
            for k, level in QUANTILES.items():
                if not close(q.get(k), float(np.quantile(v, level))):
                    bad.append((name, k, q.get(k), float(np.quantile(v, level))))
        else:
            counts = s.value_counts()
            order = first_seen(s)
            want = sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:10]
            got = [(t["value"], t["count"]) for t in p.get("top", [])]
            if got != [(str(k), int(n)) for k, n in want]:
                bad.append((name, "top", got, want))
    C.check(not bad, "profile: every column's statistics equal pandas/NumPy's (%d columns)"
            % len(df.columns), bad[:5])


def t_datasets(C, c, s):
    K = c.keys
    df = pd.read_csv(fm.CREDIT)
    r = upload(s, c, "credit", c.csv_bytes)
    C.check(r.status == 201, "POST /api/datasets?name=credit (credit_data.csv): 201", r)
    prof = r.json() if r.status == 201 else {}
    check_profile(C, prof, df)
    C.equal(prof.get("size"), len(c.csv_bytes), "profile: size = bytes uploaded")
    C.equal(prof.get("uploaded_by"), c.key_ids["test-modeler"], "profile: uploaded_by = the key")
    C.check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", prof.get("created", "")),
            "profile: created is UTC ISO 8601", prof.get("created"))
    C.equal(prof.get("encrypted"), False, "profile: stored in plaintext without a master key")
    C.equal(datasets_dir(c), ["credit.csv.enc", "credit.profile.enc"],
            "stored as datasets/credit.csv.enc and credit.profile.enc")
    with open(os.path.join(c.home, "datasets", "credit.csv.enc"), "rb") as f:
        C.check(f.read() == c.csv_bytes, "the stored CSV is the upload, byte for byte")
    # chunked, with PII columns: their entries carry counts only
    chunks = [c.csv_bytes[i:i + 5000] for i in range(0, len(c.csv_bytes), 5000)]
    r = chunked_upload(s, c, "credit-pii&pii=Age,Home", chunks)
    C.check(r.status == 201, "chunked upload with pii=Age,Home: 201", r)
    prof_pii = r.json() if r.status == 201 else {}
    check_profile(C, prof_pii, df, pii=("Age", "Home"))
    text = json.dumps(prof_pii)
    C.check('"owner"' not in text and '"rent"' not in text,
            "no category of a PII column appears anywhere in its profile")
    C.equal(prof_pii.get("pii"), ["Age", "Home"], "profile lists the PII columns")
    # type overrides, by types= and by a JSON schema=
    r = upload(s, c, "credit-types", c.csv_bytes, query="&types=Time:categorical,Records:"
               "categorical&schema=" + urllib.parse.quote('{"Seniority": "categorical"}'))
    types = {p["name"]: p["type"] for p in r.json().get("profile", [])} if r.status == 201 else {}
    C.check(r.status == 201 and types.get("Time") == "categorical" and
            types.get("Seniority") == "categorical" and types.get("Age") == "numeric",
            "types= and schema= override the inferred types", (r, types))
    # list and get, by every reading role
    for role in ("modeler", "validator", "auditor", "admin"):
        r = s.get("/api/datasets", key=K[role])
        names = [d.get("name") for d in r.json()] if r.status == 200 else None
        C.check(names == ["credit", "credit-pii", "credit-types"],
                "GET /api/datasets as %s lists the three, by name" % role, (r, names))
    listed = {d["name"]: d for d in s.get("/api/datasets", key=K["auditor"]).json()}
    entry = listed.get("credit", {})
    C.check(entry.get("rows") == 4454 and entry.get("columns") == 14 and
            entry.get("size") == len(c.csv_bytes) and entry.get("uploaded_by") ==
            c.key_ids["test-modeler"] and entry.get("created") == prof.get("created"),
            "the listing gives rows, columns, size, created, uploaded_by", entry)
    r = s.get("/api/datasets/credit", key=K["validator"])
    C.check(r.status == 200 and r.json() == prof, "GET /api/datasets/credit is the profile", r)
    # a taken name, then replace=true
    r = upload(s, c, "credit-types", c.csv_bytes)
    C.check(r.status == 409 and "replace=true" in error_of(r), "a taken name: 409", r)
    r = upload(s, c, "credit-types", c.csv_bytes, query="&replace=true")
    types = {p["name"]: p["type"] for p in r.json().get("profile", [])} if r.status == 201 else {}
    C.check(r.status == 201 and types.get("Time") == "numeric",
            "replace=true replaces it (now with inferred types)", r)
    # delete
    r = s.request("DELETE", "/api/datasets/credit-types", key=K["modeler"])
    C.check(r.status == 200, "DELETE /api/datasets/credit-types: 200", r)
    r = s.get("/api/datasets/credit-types", key=K["modeler"])
    C.check(r.status == 404, "then GET: 404", r)
    r = s.request("DELETE", "/api/datasets/credit-types", key=K["modeler"])
    C.check(r.status == 404, "and DELETE again: 404", r)
    C.check("credit-types.csv.enc" not in datasets_dir(c), "its files are gone", datasets_dir(c))
    r = s.request("DELETE", "/api/datasets/credit-pii", key=K["admin"])
    C.check(r.status == 200, "an admin may delete a dataset", r)
    c.profile = prof


def t_bad_uploads(C, c, s):
    before = datasets_dir(c)
    cases = [
        ("a ragged row", "ragged", b"a,b\n1,2\n3\n", 400, ["line 3"]),
        ("an unterminated quote", "quote", b'a,b\n1,"2\n', 400, ["line 2", "column"]),
        ("a header only", "header", b"a,b\n", 400, ["no data rows"]),
        ("an empty body", "empty", b"", (400, 411), []),
        ("a NUL byte", "nul", b"a,b\n1,\x002\n", 400, ["line 2"]),
        ("types= naming no column", "types&types=nope:numeric", b"a\n1\n", 400, ["nope"]),
        ("types= with a bad type", "types2&types=a:float64x", b"a\n1\n", 400, ["types"]),
        ("a bad schema=", "schema&schema=%7B", b"a\n1\n", 400, ["schema"]),
        ("pii= naming no column", "pii&pii=nope", b"a\n1\n", 400, ["nope"]),
        ("replace=maybe", "repl&replace=maybe", b"a\n1\n", 400, ["replace"]),
        ("a name with ..", "..", b"a\n1\n", 400, ["invalid dataset name"]),
        ("a name with ../", "..%2Fescape", b"a\n1\n", 400, ["invalid dataset name"]),
        ("a name with /", "a%2Fb", b"a\n1\n", 400, ["invalid dataset name"]),
        ("a name with NUL", "a%00b", b"a\n1\n", 400, ["invalid dataset name"]),
        ("a name of 65 characters", "n" * 65, b"a\n1\n", 400, ["invalid dataset name"]),
        ("no name", "", b"a\n1\n", 400, ["name"]),
    ]
    for what, name, body, want, says in cases:
        r = upload(s, c, name, body)
        ok_status = r.status in want if isinstance(want, tuple) else r.status == want
        msg = error_of(r)
        C.check(ok_status and all(x in msg for x in says) and "/proc/" not in msg,
                "%s: %s naming %s" % (what, want, says or "it"), r)
    r = upload(s, c, "json", b'{"a": 1}', headers={"Content-Type": "application/json"})
    C.check(r.status == 415, "a JSON body: 415", r)
    r = s.get("/api/datasets/nosuch", key=c.keys["modeler"])
    C.check(r.status == 404 and "nosuch" in error_of(r), "an unknown dataset: 404", r)
    for path in ("/api/datasets/..", "/api/datasets/a%2Fb", "/api/datasets/%2E%2E%2Fx"):
        r = s.get(path, key=c.keys["modeler"])
        C.check(r.status in (400, 404), "GET %s: 400 or 404" % path, r)
    # over the limit: declared (refused on the headers) and chunked (refused on the way)
    big = (c.csv_bytes * (LIMIT // len(c.csv_bytes) + 2))[:LIMIT + 1000]
    head = ("POST /api/datasets?name=big HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (c.keys["modeler"], len(big)))
    r = s.raw(head.encode() + big)
    C.check(r.status == 413, "a declared body over --max-dataset-bytes: 413", r)
    r = chunked_upload(s, c, "big", [big[i:i + 65536] for i in range(0, len(big), 65536)])
    C.check(r.status in (413, 0), "a chunked body over the limit: 413 (or the connection closed)",
            r)
    r = upload(s, c, "nearly", c.csv_bytes * (LIMIT // len(c.csv_bytes)))
    C.check(r.status == 201, "a body just under the limit: 201", r)
    s.request("DELETE", "/api/datasets/nearly", key=c.keys["modeler"])
    C.equal(datasets_dir(c), before, "no failed upload left a file in datasets/")
    C.check(ready(s), "the server still serves")


# ---- jobs ----------------------------------------------------------------------------------


def read_events(s, c, job_id, key="auditor", headers=None, timeout=300):
    """GET /api/jobs/{id}/events to its end: (status, content type, [(id, event, data)])."""
    conn = s.connection(timeout)
    h = fm.bearer(c.keys[key])
    h.update(headers or {})
    conn.request("GET", "/api/jobs/%s/events" % job_id, headers=h)
    r = conn.getresponse()
    events, block = [], {}
    if r.status == 200:
        while True:
            line = r.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line == "":
                if "event" in block:
                    events.append((int(block.get("id", -1)), block["event"],
                                   json.loads(block.get("data", "null"))))
                block = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                block[k] = v
    else:
        r.read()
    conn.close()
    return r.status, r.getheader("Content-Type"), events


def post_job(s, c, spec, name="credit-search", dataset="credit", key="modeler"):
    body = dict(spec)
    if dataset is not None:
        body["dataset"] = dataset
    if name is not None:
        body["name"] = name
    return s.post("/api/jobs", body, key=c.keys[key])


def job(s, c, job_id, key="auditor"):
    r = s.get("/api/jobs/%s" % job_id, key=c.keys[key])
    return r.json() if r.status == 200 else {"status": r.status}


def wait_state(s, c, job_id, states, timeout):
    doc, _ = fm.wait_until(lambda: (lambda d: d if d.get("state") in states else None)(
        job(s, c, job_id)), timeout, 0.05)
    return doc or job(s, c, job_id)


def t_job_flow(C, c, s):
    K = c.keys
    r = post_job(s, c, SMALL_JOB)
    C.check(r.status == 202 and r.json().get("state") == "queued" and
            re.match(r"^j_[0-9a-f]{12}$", r.json().get("id", "")),
            "POST /api/jobs: 202 {id, state: queued}", r)
    job_id = r.json().get("id")
    c.job_id = job_id
    t0 = time.monotonic()
    status, ctype, events = read_events(s, c, job_id)
    took = time.monotonic() - t0
    C.check(status == 200 and (ctype or "").startswith("text/event-stream"),
            "GET /api/jobs/{id}/events: 200 text/event-stream", (status, ctype))
    types = [e[1] for e in events]
    C.check(types[:2] == ["queued", "started"] and types[-1] == "succeeded",
            "the stream runs from queued, started to succeeded and ends (%.1f s, %d events)"
            % (took, len(events)), types)
    C.equal([e[0] for e in events], list(range(1, len(events) + 1)),
            "event ids are consecutive from 1")
    C.check(all(e[2].get("seq") == e[0] and e[2].get("type") == e[1] for e in events),
            "each data is JSON with its seq and type")
    C.equal(types.count("candidate_done"), 3, "one candidate_done per candidate")
    progress = [e[2]["progress"] for e in events if "progress" in e[2]]
    C.check(progress == sorted(progress) and progress[-1] == 1,
            "progress never goes back and ends at 1", progress)
    reg = [e[2] for e in events if e[1] == "registered"]
    C.check(len(reg) == 1 and reg[0].get("label") == "staging", "a registered event", reg)
    doc = job(s, c, job_id)
    C.check(doc.get("state") == "succeeded" and doc.get("progress") == 1 and
            all(doc.get(k) for k in ("created", "started", "finished")),
            "GET /api/jobs/{id}: succeeded, progress 1, created/started/finished", doc)
    C.equal(len(doc.get("log", [])), len(events), "its log holds the events streamed")
    result = doc.get("result") or {}
    board = result.get("leaderboard", [])
    C.check(len(board) == 3 and [b.get("rank") for b in board] == [1, 2, 3] and
            all(b.get("status") == "ok" and isinstance(b.get("mean"), float) and
                isinstance(b.get("std"), float) and len(b.get("folds", [])) == 3 for b in board),
            "the leaderboard: 3 candidates ranked with mean, std and 3 folds each", board)
    C.check(board == sorted(board, key=lambda b: -b["mean"]), "best first (AUC)")
    C.check(isinstance(result.get("test_metrics"), dict), "test metrics on the holdout",
            result.get("test_metrics"))
    model = result.get("model", {})
    version = model.get("version")
    C.check(model.get("name") == "credit-search" and version == 1 and
            model.get("label") == "staging", "the result names the registered model", model)
    listed = [m for m in s.get("/api/models", key=K["auditor"]).json()
              if m["name"] == "credit-search"]
    C.check(len(listed) == 1 and listed[0].get("uploaded_by") == c.key_ids["test-modeler"] and
            listed[0].get("labels") == ["staging"],
            "registered as credit-search v1, staging, uploaded_by the modeler's key", listed)
    # predictions of the registered version = finmaas predict on the model file
    path = os.path.join(c.home, "models", "credit-search", "%d.fmm" % (version or 1))
    expected = fm.predict(path, c.rows_csv)
    meta = fm.inspect(path)
    columns = [{"name": f["name"], "datatype": "FP64" if f["type"] == "numeric" else "BYTES"}
               for f in meta["features"]]
    r = s.post("/v2/models/credit-search/versions/%d/infer" % (version or 1),
               {"inputs": fm.v2_inputs(columns, c.rows)}, key=K["consumer"])
    diff = fm.check_v2_binary(r.json(), expected, "bad") if r.status == 200 else r
    C.check(diff is None, "V2 infer of the new version on %d rows = finmaas predict" %
            len(c.rows), diff)
    r = s.post("/v1/models/credit-search/labels/staging:predict",
               {"instances": [fm.tf_instance(columns, row) for row in c.rows[:3]]},
               key=K["consumer"])
    C.check(r.status == 200 and len(r.json().get("predictions", [])) == 3,
            "the staging label serves it (TF REST)", r)
    C.equal(len(meta.get("search", {}).get("leaderboard", [])), 3,
            "the leaderboard is in the model's metadata")
    # replays: all of it after the end, and from Last-Event-ID
    status, _, again = read_events(s, c, job_id, key="validator")
    C.check(status == 200 and again == events, "the stream replays the same events after the end")
    status, _, tail = read_events(s, c, job_id, headers={"Last-Event-ID": "3"})
    C.check(status == 200 and tail == events[3:], "Last-Event-ID: 3 resumes at event 4")
    r = s.get("/api/jobs", key=K["validator"])
    C.check(r.status == 200 and any(j.get("id") == job_id and j.get("state") == "succeeded"
                                    for j in r.json()), "GET /api/jobs lists it", r)


def t_bad_jobs(C, c, s):
    before = len(s.get("/api/jobs", key=c.keys["auditor"]).json())
    cases = [
        ("an unknown dataset", dict(SMALL_JOB), "credit-x", "nosuch", 404, "nosuch"),
        ("folds 1", dict(SMALL_JOB, validation={"folds": 1}), "credit-x", "credit", 400,
         "validation.folds"),
        ("an unknown key", dict(SMALL_JOB, colour="blue"), "credit-x", "credit", 400, "colour"),
        ("a target not in the dataset", dict(SMALL_JOB, target="Nope"), "credit-x", "credit",
         400, "target"),
        ("a bad metric", dict(SMALL_JOB, metric="speed"), "credit-x", "credit", 400, "metric"),
        ("a protected column not in the dataset", dict(SMALL_JOB, protected=["Nope"]),
         "credit-x", "credit", 400, "protected"),
        ("the target as a protected column", dict(SMALL_JOB, protected=["Status"]), "credit-x",
         "credit", 400, "protected"),
        ("a model name with ..", dict(SMALL_JOB), "../x", "credit", 400, "invalid model name"),
        ("a model name with /", dict(SMALL_JOB), "a/b", "credit", 400, "invalid model name"),
        ("no model name", dict(SMALL_JOB), None, "credit", 400, "name"),
        ("no dataset", dict(SMALL_JOB), "credit-x", None, 400, "dataset"),
    ]
    for what, spec, name, dataset, want, says in cases:
        r = post_job(s, c, spec, name=name, dataset=dataset)
        C.check(r.status == want and says in error_of(r), "%s: %d naming %s" % (what, want, says),
                r)
    r = s.request("POST", "/api/jobs", b"{not json", headers={"Content-Type": "application/json"},
                  key=c.keys["modeler"])
    C.check(r.status == 400, "a body that is not JSON: 400", r)
    for path in ("/api/jobs/j_000000000000", "/api/jobs/nonsense", "/api/jobs/j_0/events"):
        r = s.get(path, key=c.keys["auditor"])
        C.check(r.status == 404, "GET %s: 404" % path, r)
    after = len(s.get("/api/jobs", key=c.keys["auditor"]).json())
    C.equal(after, before, "no refused job was recorded")
    C.check(ready(s), "the server still serves")


def t_roles(C, c, s):
    K = c.keys
    for role in ("consumer", "validator", "auditor"):
        r = upload(s, c, "by-" + role, c.csv_bytes[:2000].rsplit(b"\n", 1)[0] + b"\n", key=role)
        C.check(r.status == 403, "%s may not upload a dataset (403)" % a(role), r)
    r = upload(s, c, "by-admin", c.csv_bytes[:2000].rsplit(b"\n", 1)[0] + b"\n", key="admin")
    C.check(r.status == 201, "an admin may upload one (201)", r)
    s.request("DELETE", "/api/datasets/by-admin", key=K["admin"])
    for role in ("consumer", "validator", "auditor", "admin"):
        r = post_job(s, c, SMALL_JOB, name="by-" + role, key=role)
        C.check(r.status == 403, "%s may not start a job (403)" % a(role), r)
        r = s.request("DELETE", "/api/jobs/%s" % c.job_id, key=K[role])
        C.check(r.status == 403, "%s may not cancel one (403)" % a(role), r)
    for path in ("/api/datasets", "/api/datasets/credit", "/api/jobs", "/api/jobs/%s" % c.job_id,
                 "/api/jobs/%s/events" % c.job_id):
        r = s.get(path, key=K["consumer"])
        C.check(r.status == 403, "a consumer may not GET %s (403)" % path, r)
        r = s.get(path, key=K["auditor"])
        C.check(r.status == 200, "an auditor may GET %s (200)" % path, r)
    # a key scoped to another model
    r = s.post("/api/jobs", dict(SMALL_JOB, dataset="credit", name="credit-search"),
               key=c.scoped)
    C.check(r.status == 403, "a scoped modeler may not train a model outside its scope", r)
    r = s.get("/api/jobs", key=c.scoped)
    C.check(r.status == 200 and r.json() == [], "nor sees other models' jobs", r)
    r = s.get("/api/jobs/%s" % c.job_id, key=c.scoped)
    C.check(r.status == 404, "GET of such a job: 404", r)
    r = s.get("/api/datasets", key=c.scoped)
    C.check(r.status == 200 and r.json() == [], "nor datasets outside its scope", r)
    r = s.get("/api/datasets/credit", key=c.scoped)
    C.check(r.status == 403, "GET of such a dataset: 403", r)
    # the audit trail names the dataset and the job
    entries = [json.loads(line) for line in
               fm.finmaas("audit", "export", "--home", c.home).splitlines() if line.strip()]
    up = [e for e in entries if e["action"] == "dataset.upload" and e["status"] == 201 and
          (e.get("detail") or "") == "dataset=credit"]
    made = [e for e in entries if e["action"] == "job.create" and e["status"] == 202 and
            (e.get("detail") or "").startswith("job=%s dataset=credit" % c.job_id)]
    C.check(len(up) == 1 and up[0]["key_id"] == c.key_ids["test-modeler"],
            "the upload is audited: dataset.upload, dataset=credit, the modeler's key", up)
    C.check(len(made) == 1 and made[0]["model"] == "credit-search",
            "the job is audited: job.create, job=<id> dataset=credit, model credit-search", made)
    C.check(any(e["action"] == "job.events" and e["status"] == 200 for e in entries),
            "event streams are audited (job.events)")


def t_cancel(C, c, s):
    K = c.keys
    r = post_job(s, c, LONG_JOB, name="long-a")
    a = r.json().get("id") if r.status == 202 else None
    doc = wait_state(s, c, a, ("running",), 60)
    C.check(doc.get("state") == "running", "a long job runs", doc.get("state"))
    ids = []
    for name in ("long-b", "long-c"):
        r = post_job(s, c, LONG_JOB, name=name)
        ids.append(r.json().get("id") if r.status == 202 else None)
    C.check(all(ids), "two more wait in the queue (--job-queue 2)", ids)
    r = post_job(s, c, LONG_JOB, name="long-d")
    C.check(r.status == 503 and r.header("Retry-After") and "queue is full" in error_of(r),
            "a third waiting job: 503 with Retry-After", r)
    r = s.request("DELETE", "/api/jobs/%s" % ids[0], key=K["modeler"])
    C.check(r.status == 200 and r.json().get("state") == "cancelled",
            "DELETE of a queued job: 200, cancelled at once", r)
    C.equal(job(s, c, ids[0]).get("state"), "cancelled", "  and GET says cancelled")
    t0 = time.monotonic()
    r = s.request("DELETE", "/api/jobs/%s" % a, key=K["modeler"])
    C.check(r.status == 202 and r.json().get("state") == "running" and
            r.json().get("cancel_requested") is True,
            "DELETE of a running job: 202, cancel requested", r)
    doc = wait_state(s, c, a, ("cancelled", "failed", "succeeded"), 60)
    C.check(doc.get("state") == "cancelled", "the running job is cancelled (%.2f s)"
            % (time.monotonic() - t0), doc.get("state"))
    status, _, events = read_events(s, c, a)
    C.check(status == 200 and events and events[-1][1] == "cancelled",
            "its event stream ends with 'cancelled'", [e[1] for e in events[-3:]])
    r = s.request("DELETE", "/api/jobs/%s" % a, key=K["modeler"])
    C.check(r.status == 409 and "cancelled" in error_of(r), "DELETE again: 409", r)
    doc = wait_state(s, c, ids[1], ("running",), 60)
    C.check(doc.get("state") == "running", "the next queued job starts", doc.get("state"))
    r = s.request("DELETE", "/api/jobs/%s" % ids[1], key=K["modeler"])
    doc = wait_state(s, c, ids[1], ("cancelled",), 60)
    C.check(r.status == 202 and doc.get("state") == "cancelled", "and is cancelled too", r)
    C.check(not any(m["name"].startswith("long-") for m in
                    s.get("/api/models", key=K["auditor"]).json()),
            "cancelled jobs registered no model")


def t_latency(C, c, s):
    K = c.keys
    r = post_job(s, c, LONG_JOB, name="long-latency")
    job_id = r.json().get("id") if r.status == 202 else None
    doc = wait_state(s, c, job_id, ("running",), 60)
    C.check(doc.get("state") == "running", "a long job runs", doc.get("state"))
    # a client that opens the stream and never reads, and one that vanishes at once
    stalled = socket.create_connection((s.host, s.port))
    req = ("GET /api/jobs/%s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           % (job_id, K["auditor"])).encode()
    stalled.sendall(req)
    gone = socket.create_connection((s.host, s.port))
    gone.sendall(req)
    gone.close()
    path = os.path.join(c.home, "models", "credit-search", "1.fmm")
    columns = [{"name": f["name"], "datatype": "FP64" if f["type"] == "numeric" else "BYTES"}
               for f in fm.inspect(path)["features"]]
    body = json.dumps({"inputs": fm.v2_inputs(columns, c.rows[:1])}).encode()
    client = fm.Client(s, role="consumer")
    times, bad = [], []
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        r = client.post("/v2/models/credit-search/infer", body)
        times.append(time.monotonic() - t0)
        if r.status != 200:
            bad.append(r)
    client.close()
    progressed = job(s, c, job_id).get("progress", 0)
    times.sort()
    C.check(not bad and times and times[-1] < 1.0,
            "%d infer requests while the job runs: all 200 within a second (p50 %.1f ms, max "
            "%.1f ms)" % (len(times), 1000 * times[len(times) // 2], 1000 * times[-1]), bad[:3])
    C.check(progressed > 0, "the job made progress meanwhile (%.3f)" % progressed)
    s.request("DELETE", "/api/jobs/%s" % job_id, key=K["modeler"])
    doc = wait_state(s, c, job_id, ("cancelled",), 60)
    C.check(doc.get("state") == "cancelled", "cancelled", doc.get("state"))
    stalled.close()
    C.check(ready(s), "the server still serves after the stalled and vanished streams")


def t_restart(C, c, s):
    K = c.keys
    r = post_job(s, c, LONG_JOB, name="long-stop")
    job_id = r.json().get("id") if r.status == 202 else None
    doc = wait_state(s, c, job_id, ("running",), 60)
    C.check(doc.get("state") == "running", "a long job runs", doc.get("state"))
    conn = s.connection(60)
    conn.request("GET", "/api/jobs/%s/events" % job_id, headers=fm.bearer(K["auditor"]))
    stream = conn.getresponse()
    stream.readline()
    took = fm.stop_checked(C, s)
    t0 = time.monotonic()
    try:
        rest = stream.read()
        ended = True
    except (http.client.IncompleteRead, ConnectionError, socket.timeout) as e:
        rest, ended = str(e).encode(), isinstance(e, http.client.IncompleteRead)
    conn.close()
    C.check(ended and took < 20, "SIGTERM while the job runs: the event stream ends, the server "
            "exits in %.1f s" % took, (rest[-300:], time.monotonic() - t0))
    s2 = start(c, "restarted")
    doc = job(s2, c, job_id)
    C.check(doc.get("state") == "failed" and doc.get("error") == "interrupted by shutdown" and
            doc.get("log", [{}])[-1].get("type") == "failed",
            "after the restart the job is failed, 'interrupted by shutdown'",
            {k: doc.get(k) for k in ("state", "error")})
    # a crash: one job running, one waiting
    r = post_job(s2, c, LONG_JOB, name="long-crash")
    running = r.json().get("id") if r.status == 202 else None
    doc = wait_state(s2, c, running, ("running",), 60)
    r = post_job(s2, c, LONG_JOB, name="long-waiting")
    waiting = r.json().get("id") if r.status == 202 else None
    C.check(doc.get("state") == "running" and waiting, "one job runs, one waits")
    s2.kill()
    s3 = start(c, "after-crash")
    for jid, what in ((running, "the running job"), (waiting, "the waiting job")):
        doc = job(s3, c, jid)
        C.check(doc.get("state") == "failed" and
                doc.get("error") == "interrupted by a server restart",
                "SIGKILL, restart: %s is failed, 'interrupted by a server restart'" % what,
                {k: doc.get(k) for k in ("state", "error")})
    status, _, events = read_events(s3, c, running)
    C.check(status == 200 and events and events[-1][1] == "failed" and
            events[-1][2].get("error") == "interrupted by a server restart",
            "its event stream ends with the failure", [e[1] for e in events[-2:]])
    r = post_job(s3, c, SMALL_JOB, name="after-restart")
    doc = wait_state(s3, c, r.json().get("id"), ("succeeded", "failed"), 300) \
        if r.status == 202 else {}
    C.check(doc.get("state") == "succeeded", "the restarted server runs new jobs", doc.get("error"))
    fm.stop_checked(C, s3)


def t_encrypted(C, c):
    key = c.w.join("master.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    other = c.w.join("other.key")
    with open(other, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(other, 0o600)
    home = c.w.join("home-enc")
    os.makedirs(home)
    keys = fm.home_keys(home)

    def server(name, env):
        return fm.Server(home, c.w.path, name=name, args=SERVER_ARGS, env=env).start()

    s = server("enc", {"FINMAAS_MASTER_KEY_FILE": key})
    r = s.request("POST", "/api/datasets?name=secret&pii=Age", c.csv_bytes, headers=CSV,
                  key=keys["modeler"])
    C.check(r.status == 201 and r.json().get("encrypted") is True,
            "upload with a master key: 201, encrypted", r)
    stored = {n: open(os.path.join(home, "datasets", n), "rb").read()
              for n in ("secret.csv.enc", "secret.profile.enc")}
    windows = [c.csv_bytes[i:i + 32] for i in range(0, len(c.csv_bytes) - 32, 997)]
    C.check(all(b.startswith(b"FMENC1") for b in stored.values()) and
            not any(w in stored["secret.csv.enc"] for w in windows) and
            b"Seniority" not in stored["secret.profile.enc"],
            "both stored files start with FMENC1 and hold none of the CSV's bytes (%d windows)"
            % len(windows))
    r = s.get("/api/datasets/secret", key=keys["auditor"])
    C.check(r.status == 200 and r.json().get("rows") == 4454, "the profile reads back", r)
    spec = dict(SMALL_JOB, dataset="secret", name="secret-model", search={"budget": 1},
                space={"family": ["logistic"], "epochs": [5]})
    r = s.post("/api/jobs", spec, key=keys["modeler"])
    e = fm.Context()
    e.keys = keys
    doc = wait_state(s, e, r.json().get("id"), ("succeeded", "failed"), 300) \
        if r.status == 202 else {}
    C.check(doc.get("state") == "succeeded", "a job trains on the encrypted dataset",
            doc.get("error"))
    pii = (doc.get("spec") or {}).get("pii")
    C.equal(pii, ["Age"], "the job's spec marks the dataset's PII column")
    fm.stop_checked(C, s)
    for tag, env in (("no-key", {}), ("other-key", {"FINMAAS_MASTER_KEY_FILE": other})):
        s = server("enc-" + tag, env)
        r = s.get("/api/datasets/secret", key=keys["auditor"])
        C.check(r.status == 403 and "secret" in error_of(r),
                "%s: the dataset is refused (403, naming it)" % tag, r)
        r = s.post("/api/jobs", dict(spec, name="other-model"), key=keys["modeler"])
        C.check(r.status == 403, "%s: and no job starts on it" % tag, r)
        fm.stop_checked(C, s)


def sections(C, w):
    c = setup(w)
    out = fm.finmaas("serve", "--help")
    C.check("--job-workers" in out and "--max-dataset-bytes" in out,
            "finmaas serve --help documents --job-workers and --max-dataset-bytes")
    s = start(c, "main")
    C.section("datasets: upload, profile against pandas, list, get, delete", t_datasets, C, c, s)
    C.section("datasets: bad uploads leave nothing behind", t_bad_uploads, C, c, s)
    C.section("jobs: a search followed to the end, its model served", t_job_flow, C, c, s)
    C.section("jobs: bad submissions", t_bad_jobs, C, c, s)
    C.section("roles, scopes and the audit trail", t_roles, C, c, s)
    C.section("jobs: cancel queued and running, a full queue", t_cancel, C, c, s)
    C.section("predictions while a job runs", t_latency, C, c, s)
    C.section("encryption at rest", t_encrypted, C, c)
    C.section("restarts: shutdown and crash in the middle of a job", t_restart, C, c, s)


def main():
    return fm.run_main("finmaas serve: datasets and training jobs", "fm-jobs-", sections)


if __name__ == "__main__":
    sys.exit(main())
