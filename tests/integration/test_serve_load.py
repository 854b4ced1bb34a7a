"""`finmaas serve` under concurrent load: many keep-alive clients, a version swap while requests
flow, and dynamic batching.

  - 16 threads x 1,000 V2 single-row requests on keep-alive connections, rows drawn from 200 real
    rows of credit_data.csv; every answer checked against `finmaas predict` for its row.
  - While 8 threads send requests without pause, a new version (another seed) is uploaded and the
    production label is moved back and forth: no request may fail, every answer must match the
    predictions of the version it reports, and a request sent after a label change was answered
    must be served by the labelled version.
  - With dynamic batching on, concurrent answers equal the unbatched ones and the
    finmaas_model_batch_size histogram shows batches of more than one row.

Every server runs with its defaults (API keys, durable audit log): predictions use a consumer
key, the upload a modeler key and the production label a validator key, and each answer waits
for its audit entry to be committed.

FM_TEST_SCALE scales the request counts (default 1.0, also for a sanitizer build: 16,000
requests take about 10 s there).
Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_serve_load.py
"""
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402


def setup(w):
    c = fm.credit_context(w, 200)
    c.model = {1: fm.train(fm.CREDIT, "Status", w.join("v1.fmm"), "--positive", "bad", seed=1),
               2: fm.train(fm.CREDIT, "Status", w.join("v2.fmm"), "--positive", "bad", seed=2)}
    c.pred = {v: fm.predict(path, c.rows_csv) for v, path in c.model.items()}
    differ = sum(abs(a["p_bad"] - b["p_bad"]) > 1e-3 for a, b in zip(c.pred[1], c.pred[2]))
    assert differ > 100, "the two versions must give different answers (%d rows differ)" % differ
    c.home = w.join("home")
    assert fm.registry_add(c.home, "credit", c.model[1]) == 1
    assert fm.registry_add(c.home, "swap", c.model[1]) == 1
    return c


def answer_of(resp):
    """(version, probability, label) of a single-row V2 answer, or None when malformed."""
    try:
        doc = resp.json()
        return (doc["model_version"], fm.output(doc, "probability")["data"][0],
                fm.output(doc, "label")["data"][0])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def t_concurrency(C, c, s):
    columns = s.get("/v2/models/credit").json()["inputs"]
    c.columns = columns
    bodies = fm.single_row_bodies(columns, c.rows)
    # one request in eight is a TF Serving row-format request for the same row
    tf_bodies = [json.dumps({"instances": [fm.tf_instance(columns, r)]}).encode() for r in c.rows]
    threads, per = 16, fm.scaled(1000, 50)
    failures, answers = [], {}
    lock = threading.Lock()
    s.record = False

    def work(k):
        rng = random.Random(k)
        client = fm.Client(s)
        try:
            for n in range(per):
                i = rng.randrange(len(bodies))
                tf = n % 8 == 7
                try:
                    if tf:
                        r = client.post("/v1/models/credit:predict", tf_bodies[i])
                    else:
                        r = client.post("/v2/models/credit/infer", bodies[i])
                except Exception as ex:  # noqa: BLE001 - any failure counts
                    with lock:
                        failures.append("row %d: %r" % (i, ex))
                    continue
                if r.status != 200:
                    a = None
                elif tf:
                    try:
                        p = r.json()["predictions"][0]
                        a = ("1", p["probability"], p["label"])
                    except (ValueError, KeyError, IndexError, TypeError):
                        a = None
                else:
                    a = answer_of(r)
                e = c.pred[1][i]
                if not a or a[0] != "1" or not fm.close_to(a[1], e["p_bad"]) or a[2] != e["label"]:
                    with lock:
                        failures.append("row %d: %d %r" % (i, r.status, r.body[:200]))
                elif not tf:
                    with lock:
                        answers[i] = a[1]
        finally:
            client.close()

    t0 = time.monotonic()
    errors = fm.run_threads(threads, work)
    took = time.monotonic() - t0
    C.check(not errors, "client threads ran without exceptions", errors[:1])
    C.check(not failures, "%d threads x %d keep-alive requests (V2 single rows, 1 in 8 TF "
            "predict): every answer equals finmaas predict for its row (%.0f requests/s)"
            % (threads, per, threads * per / took),
            "%d failed, first: %s" % (len(failures), failures[:3]))
    c.unbatched = answers


def t_swap(C, c, s):
    columns = s.get("/v2/models/swap").json()["inputs"]
    bodies = fm.single_row_bodies(columns, c.rows)
    stop = threading.Event()
    lock = threading.Lock()
    failures, seen = [], {"1": 0, "2": 0}
    # (time the PUT answer came back, version): requests sent later must get that version
    switches = []
    stale = []

    def expected_version(sent, answered):
        """The version a request sent at `sent` and answered at `answered` must get: that of the
        last change acknowledged before it was sent, unless another change began before it was
        answered (then either version may answer)."""
        v = None
        for n, (begun, acked, ver) in enumerate(switches):
            if acked is not None and acked <= sent:
                v = (ver, n, sent - acked)
            elif begun <= answered:
                v = None
        return v

    def change(fn, version):
        with lock:
            switches.append((time.monotonic(), None, version))
        r = fn()
        with lock:
            begun = switches[-1][0]
            switches[-1] = (begun, time.monotonic(), version)
        return r

    def work(k):
        rng = random.Random(100 + k)
        client = fm.Client(s)
        try:
            while not stop.is_set():
                i = rng.randrange(len(bodies))
                sent = time.monotonic()
                try:
                    r = client.post("/v2/models/swap/infer", bodies[i])
                    answered = time.monotonic()
                except Exception as ex:  # noqa: BLE001
                    with lock:
                        failures.append("row %d: %r" % (i, ex))
                    continue
                a = answer_of(r) if r.status == 200 else None
                if not a or a[0] not in ("1", "2"):
                    with lock:
                        failures.append("row %d: %d %r" % (i, r.status, r.body[:200]))
                    continue
                e = c.pred[int(a[0])][i]
                with lock:
                    want = expected_version(sent, answered)
                    seen[a[0]] += 1
                    if not fm.close_to(a[1], e["p_bad"]) or a[2] != e["label"]:
                        failures.append("row %d: version %s answered %r, that version's predict "
                                        "says %r" % (i, a[0], a[1:], (e["p_bad"], e["label"])))
                    if want is not None and a[0] != want[0]:
                        stale.append((i, a[0]) + want)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    pause = 0.25
    time.sleep(pause)
    data = open(c.model[2], "rb").read()
    r = change(lambda: s.post("/v2/repository/models/swap/versions", data,
                              headers={"Content-Type": "application/octet-stream"}), "2")
    ok = r.status == 201 and r.json().get("version") == 2
    C.check(ok, "upload of version 2 under load: 201", r)
    flips = 0
    for k in range(fm.scaled(8, 4)):
        time.sleep(pause)
        v = 1 if k % 2 == 0 else 2
        r = change(lambda: s.request("PUT", "/api/models/swap/labels/production",
                                     {"version": v}), str(v))
        flips += r.status == 200
    time.sleep(pause)
    stop.set()
    for t in threads:
        t.join(60)
    total = seen["1"] + seen["2"]
    C.check(flips == fm.scaled(8, 4), "the production label moved %d times under load" % flips)
    C.check(not failures, "%d requests during the swap: none failed, each answer matches the "
            "predictions of the version it reports" % total,
            "%d failed, first: %s" % (len(failures), failures[:3]))
    C.check(seen["1"] > 0 and seen["2"] > 0, "both versions answered (%d by 1, %d by 2)" %
            (seen["1"], seen["2"]))
    C.check(not stale, "requests sent after a label change was acknowledged are served by the "
            "labelled version", "%d stale answers, first (row, got, want, change number, seconds "
            "after the change): %s" % (len(stale), stale[:5]))


def t_unload_under_load(C, c, s):
    """Unload and load a model again and again while 4 threads score with it: each answer is a
    correct 200, or 503 with Retry-After while it is unloaded; nothing else."""
    stop = threading.Event()
    lock = threading.Lock()
    bodies = fm.single_row_bodies(c.columns, c.rows)
    failures, counts = [], {200: 0, 503: 0}

    def work(k):
        rng = random.Random(500 + k)
        client = fm.Client(s)
        try:
            while not stop.is_set():
                i = rng.randrange(len(bodies))
                r = client.post("/v2/models/credit/infer", bodies[i])
                a = answer_of(r) if r.status == 200 else None
                e = c.pred[1][i]
                ok = (r.status == 200 and a and fm.close_to(a[1], e["p_bad"]) and
                      a[2] == e["label"]) or (r.status == 503 and r.header("Retry-After"))
                with lock:
                    if ok:
                        counts[r.status] += 1
                    else:
                        failures.append("row %d: %d %r" % (i, r.status, r.body[:200]))
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    cycles, bad = fm.scaled(100, 20), []
    for _ in range(cycles):
        for what in ("unload", "load"):
            r = s.post("/v2/repository/models/credit/%s" % what)
            if r.status != 200:
                bad.append((what, r))
            time.sleep(0.002)
    stop.set()
    for t in threads:
        t.join(60)
    C.check(not bad, "%d unload/load cycles while requests flow: all 200" % cycles, bad[:3])
    C.check(not failures, "requests during the cycles: %d correct answers, %d 503 with "
            "Retry-After, nothing else" % (counts[200], counts[503]), failures[:3])
    C.check(counts[200] > 0 and counts[503] > 0, "both outcomes were seen")


def t_batching(C, c, w):
    s = fm.Server(c.home, w.path, name="batched",
                  args=["--batch-max-size", "16", "--batch-max-delay-us", "2000"]).start()
    try:
        bodies = fm.single_row_bodies(c.columns, c.rows)
        threads, per = 8, fm.scaled(300, 40)
        failures = []
        lock = threading.Lock()

        def work(k):
            rng = random.Random(1000 + k)
            client = fm.Client(s)
            try:
                for _ in range(per):
                    i = rng.randrange(len(bodies))
                    r = client.post("/v2/models/credit/infer", bodies[i])
                    a = answer_of(r) if r.status == 200 else None
                    e = c.pred[1][i]
                    ref = c.unbatched.get(i, e["p_bad"])
                    if not a or not fm.close_to(a[1], ref) or not fm.close_to(a[1], e["p_bad"]) \
                            or a[2] != e["label"]:
                        with lock:
                            failures.append("row %d: %d %r" % (i, r.status, r.body[:200]))
            finally:
                client.close()

        errors = fm.run_threads(threads, work)
        C.check(not errors, "batched client threads ran without exceptions", errors[:1])
        C.check(not failures, "batching on: %d concurrent requests equal the unbatched answers"
                % (threads * per), "%d failed, first: %s" % (len(failures), failures[:3]))
        body = {"inputs": fm.v2_inputs(c.columns, c.rows[:40])}
        r = s.post("/v2/models/credit/infer", json.dumps(body).encode(),
                   headers={"Content-Type": "application/json"})
        C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred[1][:40], "bad") is None,
                "batching on: a 40-row request (larger than a batch) is answered correctly", r)
        samples = s.metrics()
        series = [(l["le"], v) for n, l, v in samples if n == "finmaas_model_batch_size_bucket"
                  and l.get("model") == "credit" and l.get("version") == "1"]
        count = fm.metric(samples, "finmaas_model_batch_size_count", model="credit", version=1)
        total = fm.metric(samples, "finmaas_model_batch_size_sum", model="credit", version=1)
        le1 = dict(series).get("1")
        C.check(total == threads * per + 40,
                "finmaas_model_batch_size_sum counts every row scored (%s)" % total)
        C.check(le1 is not None and count is not None and count > le1 and count < threads * per,
                "finmaas_model_batch_size shows batches of more than one row (%s of %s batches "
                "had one row)" % (le1, count), series)
        print("# unload and load under load, batching on", flush=True)
        t_unload_under_load(C, c, s)
    finally:
        rc, took = s.stop()
    C.check(rc == 0, "batched server exits 0 on SIGTERM", rc)
    C.check(not s.sanitizer_report(), "no sanitizer report (batched server)", s.stderr()[-3000:])


def sections(C, w):
    c = setup(w)
    s = fm.Server(c.home, w.path).start()
    C.section("16 keep-alive clients", t_concurrency, C, c, s)
    C.section("version swap under load", t_swap, C, c, s)
    C.section("unload and load under load", t_unload_under_load, C, c, s)
    fm.stop_checked(C, s)
    C.section("dynamic batching", t_batching, C, c, w)


def main():
    return fm.run_main("finmaas serve: concurrency, version swap, batching", "fm-serve-load-",
                       sections)


if __name__ == "__main__":
    sys.exit(main())
