"""Checks finmaas's Prometheus exposition (src/observe/metrics.c, through
tests/tools/observe_metrics_demo) with a strict reader of the text format written here from the
format's rules, independently of the C code.

The script chooses the observations (seeded): latencies exactly on every bucket bound, just above
and below them, zero, beyond the last bound and random; batch sizes on and around every power of
two; counters, gauges, HTTP statuses (including ones outside 100..599, which must be ignored);
model names with a double quote, a backslash, a newline and UTF-8. It computes every expected value
itself and compares: cumulative bucket counts, _count, _sum (exactly, as decimals: latency sums
are kept in nanoseconds), counters, gauges, and the process gauges for plausibility.

Rules the reader enforces (Prometheus text format 0.0.4): the text is UTF-8 and ends with a
newline; `# HELP name text` and `# TYPE name type` at most once per family, TYPE before the
family's first sample; all lines of a family together; metric and label names well formed, no
duplicate label names, no reserved `__` labels; label values quoted with only the escapes \\, \"
and \n; values that Go's ParseFloat accepts (or +Inf/-Inf/NaN); no duplicate series; histogram
series with `le` buckets in increasing order, non-decreasing, ending with le="+Inf" equal to
_count, and a _sum; counters not negative.

If prometheus_client is importable, its parser must also accept the text and agree on every sample.
"""
import math
import os
import random
import re
import subprocess
import sys
import time
from decimal import Decimal

TOOL = os.path.join(os.environ.get("FM_TOOLS", "build/tests"), "observe_metrics_demo")

LATENCY_BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                  0.25, 0.5, 1.0, 2.5, 10.0]
BATCH_BOUNDS = [float(2 ** i) for i in range(11)]

failures = []


def check(cond, message):
    if not cond:
        print("FAIL " + message)
        failures.append(message)
    return cond


# ---- the strict reader ----

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(Exception):
    pass


def parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not FLOAT.fullmatch(text):
        raise FormatError(f"{where}: bad value {text!r}")
    return float(text)


def parse_labels(line, i, where):
    """Parses {name="value",...} starting at line[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        if line[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL_NAME.match(line, i)
        if not m:
            raise FormatError(f"{where}: bad label name at column {i + 1}")
        name = m.group(0)
        if name.startswith("__"):
            raise FormatError(f"{where}: reserved label name {name}")
        if name in labels:
            raise FormatError(f"{where}: duplicate label {name}")
        i = m.end()
        if line[i:i + 2] != '="':
            raise FormatError(f"{where}: expected =\" after label {name}")
        i += 2
        value = []
        while True:
            if i >= len(line):
                raise FormatError(f"{where}: unterminated value of label {name}")
            c = line[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise FormatError(f"{where}: bad escape \\{nxt} in label {name}")
                value.append("\n" if nxt == "n" else nxt)
                i += 2
                continue
            value.append(c)
            i += 1
        labels[name] = "".join(value)
        if line[i:i + 1] == ",":
            i += 1
        elif line[i:i + 1] != "}":
            raise FormatError(f"{where}: expected , or }} after label {name}")


def family_of(sample_name, families):
    """The family a sample name belongs to: itself, or a histogram/summary by its suffix."""
    if sample_name in families and families[sample_name]["type"] not in ("histogram", "summary"):
        return sample_name
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = sample_name[:-len(suffix)]
        if sample_name.endswith(suffix) and base in families and families[base]["type"] in kinds:
            return base
    return sample_name


def parse_exposition(raw):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}; raises FormatError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"not UTF-8: {e}")
    if not text.endswith("\n"):
        raise FormatError("does not end with a newline")
    if "\r" in text:
        raise FormatError("carriage return in the text")
    families = {}
    finished = set()
    current = None
    seen_series = set()
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {lineno}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise FormatError(f"{where}: bad metric name {name!r}")
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if name in finished or (current != name and fam["samples"]):
                    raise FormatError(f"{where}: {parts[1]} of {name} after its samples")
                if current is not None and current != name:
                    finished.add(current)
                current = name
                rest = parts[3] if len(parts) == 4 else ""
                if parts[1] == "HELP":
                    if fam["help"] is not None:
                        raise FormatError(f"{where}: second HELP for {name}")
                    if re.search(r"\\[^\\n]|\\$", rest):
                        raise FormatError(f"{where}: bad escape in HELP of {name}")
                    fam["help"] = rest.replace("\\n", "\n").replace("\\\\", "\\")
                else:
                    if fam["type"] is not None:
                        raise FormatError(f"{where}: second TYPE for {name}")
                    if rest not in TYPES:
                        raise FormatError(f"{where}: unknown type {rest!r}")
                    fam["type"] = rest
            continue  # other comments are allowed and ignored
        m = METRIC_NAME.match(line)
        if not m:
            raise FormatError(f"{where}: bad metric name")
        name = m.group(0)
        i = m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise FormatError(f"{where}: expected a space before the value")
        fields = line[i + 1:].split(" ")
        if len(fields) not in (1, 2) or (len(fields) == 2 and not re.fullmatch(r"-?[0-9]+", fields[1])):
            raise FormatError(f"{where}: expected a value and an optional integer timestamp")
        value = parse_value(fields[0], where)
        fam_name = family_of(name, families)
        if fam_name != current:
            if fam_name in finished or (fam_name in families and families[fam_name]["samples"]):
                raise FormatError(f"{where}: family {fam_name} is not in one group")
            if current is not None:
                finished.add(current)
            current = fam_name
        fam = families.setdefault(fam_name, {"type": None, "help": None, "samples": []})
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise FormatError(f"{where}: duplicate series {name}{labels}")
        seen_series.add(key)
        if fam["type"] == "counter" and not value >= 0:
            raise FormatError(f"{where}: negative or NaN counter {name}")
        fam["samples"].append((name, labels, value))
    for name, fam in families.items():
        if fam["type"] == "histogram":
            check_histogram(name, fam)
    return families


def check_histogram(name, fam):
    series = {}
    for sample, labels, value in fam["samples"]:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sample == name + "_bucket":
            if "le" not in labels:
                raise FormatError(f"{name}: bucket without le {labels}")
            s["buckets"].append((parse_value(labels["le"], f"{name} le"), value))
        elif sample == name + "_sum":
            s["sum"] = value
        elif sample == name + "_count":
            s["count"] = value
        else:
            raise FormatError(f"{name}: unexpected sample {sample}")
    for rest, s in series.items():
        b = s["buckets"]
        if not b or b[-1][0] != math.inf:
            raise FormatError(f"{name}{dict(rest)}: no le=\"+Inf\" bucket last")
        for (le0, v0), (le1, v1) in zip(b, b[1:]):
            if not le1 > le0:
                raise FormatError(f"{name}{dict(rest)}: le {le1} after {le0}")
            if v1 < v0:
                raise FormatError(f"{name}{dict(rest)}: bucket le={le1} below le={le0}")
        if s["count"] is None or s["sum"] is None:
            raise FormatError(f"{name}{dict(rest)}: missing _sum or _count")
        if b[-1][1] != s["count"]:
            raise FormatError(f"{name}{dict(rest)}: +Inf bucket {b[-1][1]} != _count {s['count']}")
        if any(v != int(v) or v < 0 for _, v in b):
            raise FormatError(f"{name}{dict(rest)}: bucket counts not whole numbers")


def self_test_reader():
    """The reader must reject what the format forbids; otherwise its acceptance proves nothing."""
    good = ("# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\n"
            "# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 3.5\nh_count 2\n")
    parse_exposition(good.encode())
    bad = {
        "no final newline": good[:-1],
        "second HELP": good + "# HELP a_total again\n",
        "second TYPE": good.replace("# TYPE h histogram\n", "# TYPE h histogram\n# TYPE h histogram\n"),
        "split family": good + "a_total{l=\"w\"} 2\n",
        "bad escape": good.replace('l="v"', 'l="\\t"'),
        "unescaped quote": good.replace('l="v"', 'l="a"b"'),
        "raw newline in label": good.replace('l="v"', 'l="a\nb"'),
        "bad value": good.replace("a_total{l=\"v\"} 1", "a_total{l=\"v\"} 1,0"),
        "duplicate series": good.replace("a_total{l=\"v\"} 1\n", "a_total{l=\"v\"} 1\na_total{l=\"v\"} 2\n"),
        "no +Inf": good.replace('h_bucket{le="+Inf"} 2\n', ""),
        "+Inf != count": good.replace("h_count 2", "h_count 3"),
        "not cumulative": good.replace('h_bucket{le="1"} 1', 'h_bucket{le="1"} 5'),
        "le out of order": good.replace('h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2',
                                        'h_bucket{le="+Inf"} 2\nh_bucket{le="1"} 1'),
        "negative counter": good.replace("a_total{l=\"v\"} 1", "a_total{l=\"v\"} -1"),
        "reserved label": good.replace('l="v"', '__l="v"'),
        "TYPE after samples": good + "# TYPE a_total counter\n",
    }
    for what, text in bad.items():
        try:
            parse_exposition(text.encode())
            check(False, f"reader self-test: accepted {what}")
        except FormatError:
            pass


# ---- the observations ----

def make_script(rng):
    """Returns (script text, expected state)."""
    names = ["credit", "fraud-score", 'we"ird\\mo\ndel', "pr\u00eat-imm\u00e9diat", "idle"]
    names += [f"bulk-{i}" for i in range(20)]
    models = [(n, v) for n, v in zip(names, [3, 1, 2, 7, 2] + list(range(1, 21)))]
    models.append(("credit", 4))  # a second version of one model
    lines = []
    state = []
    for name, version in models:
        lines.append(f"model {name.encode().hex()} {version}")
        state.append({"name": name, "version": version, "queue": [], "compute": [], "batch": [],
                      "success": 0, "failure": 0, "inferences": 0, "in_flight": 0, "load": 0})

    special = [0.0, 1e-9, 12.5, 37.0, 1e4]
    for b in LATENCY_BOUNDS:
        special += [b, math.nextafter(b, math.inf), math.nextafter(b, 0.0)]
    batch_special = [0, 1, 2, 3, 4, 5, 1023, 1024, 1025, 100000]
    for k, st in enumerate(state):
        if st["name"] == "idle":
            continue
        for hist in ("queue", "compute"):
            values = list(special) if k < 2 else []
            values += [round(rng.lognormvariate(-6, 2), 9) for _ in range(rng.randint(0, 300))]
            for x in values:
                lines.append(f"{hist} {k} {x!r}")
                st[hist].append(x)
        rows = list(batch_special) if k < 2 else []
        rows += [rng.randint(1, 2000) for _ in range(rng.randint(0, 100))]
        for r in rows:
            lines.append(f"batch {k} {r}")
            st["batch"].append(r)
        for counter in ("success", "failure", "inferences"):
            for _ in range(rng.randint(0, 3)):
                n = rng.choice([0, 1, rng.randint(1, 10 ** 6), 2 ** 40])
                lines.append(f"{counter} {k} {n}")
                st[counter] += n
        for _ in range(rng.randint(0, 5)):
            d = rng.randint(-3, 5)
            lines.append(f"in_flight {k} {d}")
            st["in_flight"] += d
        if rng.random() < 0.7:
            st["load"] = rng.choice([0, 1, 999999, 1000000, rng.randint(0, 10 ** 9)])
            lines.append(f"load {k} {st['load']}")
    http = {}
    for _ in range(2000):
        code = rng.choice([200, 200, 200, 201, 204, 400, 401, 404, 413, 429, 500, 503, 100, 599,
                           99, 600, 0, -1, 1000])
        lines.append(f"http {code}")
        if 100 <= code <= 599:
            http[code] = http.get(code, 0) + 1
    # The order of updates does not matter; registrations stay first (they number the models).
    updates = lines[len(models):]
    rng.shuffle(updates)
    return "\n".join(lines[:len(models)] + updates) + "\n", state, http


def nanos(x):
    """A latency's contribution to the sum in nanoseconds (the values above are whole nanoseconds
    or within an ulp of one, so there is no rounding tie)."""
    return round(x * 1e9) if x > 0 else 0


# ---- comparing ----

def series(fam, name, **labels):
    return [v for n, l, v in fam["samples"] if n == name and all(l.get(k) == str(v2) for k, v2 in labels.items())]


def compare(families, state, http, raw, started, ended):
    expected_types = {
        "finmaas_model_requests_total": "counter",
        "finmaas_model_inferences_total": "counter",
        "finmaas_model_queue_seconds": "histogram",
        "finmaas_model_compute_seconds": "histogram",
        "finmaas_model_batch_size": "histogram",
        "finmaas_model_in_flight": "gauge",
        "finmaas_model_load_seconds": "gauge",
        "finmaas_http_requests_total": "counter",
        "process_resident_memory_bytes": "gauge",
        "process_open_fds": "gauge",
        "process_start_time_seconds": "gauge",
    }
    check(set(families) == set(expected_types), f"families: {sorted(families)}")
    for name, t in expected_types.items():
        fam = families.get(name, {})
        check(fam.get("type") == t, f"{name} has TYPE {t}")
        check(bool(fam.get("help")), f"{name} has HELP")
    text = raw.decode()
    for name in expected_types:
        check(text.count(f"# HELP {name} ") == 1 and text.count(f"# TYPE {name} ") == 1,
              f"{name}: HELP and TYPE once")

    checked = 0
    for st in state:
        ml = {"model": st["name"], "version": st["version"]}
        who = f"{st['name']!r} v{st['version']}"
        fam = families["finmaas_model_requests_total"]
        for outcome in ("success", "failure"):
            got = series(fam, "finmaas_model_requests_total", outcome=outcome, **ml)
            check(got == [st[outcome]], f"{who} {outcome}: {got} vs {st[outcome]}")
        got = series(families["finmaas_model_inferences_total"], "finmaas_model_inferences_total", **ml)
        check(got == [st["inferences"]], f"{who} inferences: {got} vs {st['inferences']}")
        got = series(families["finmaas_model_in_flight"], "finmaas_model_in_flight", **ml)
        check(got == [st["in_flight"]], f"{who} in_flight: {got} vs {st['in_flight']}")
        for hist, bounds, unit in (("queue", LATENCY_BOUNDS, "seconds"),
                                   ("compute", LATENCY_BOUNDS, "seconds"),
                                   ("batch", BATCH_BOUNDS, "rows")):
            fname = f"finmaas_model_{hist}_seconds" if unit == "seconds" else "finmaas_model_batch_size"
            fam = families[fname]
            obs = st[hist]
            buckets = {}
            for n, l, v in fam["samples"]:
                if n == fname + "_bucket" and l["model"] == st["name"] and l["version"] == str(st["version"]):
                    buckets[float(l["le"]) if l["le"] != "+Inf" else math.inf] = v
            check(len(buckets) == len(bounds) + 1, f"{who} {hist}: {len(buckets)} buckets")
            for b in bounds + [math.inf]:
                want = sum(1 for x in obs if (x <= b if not math.isnan(x) else b == math.inf))
                check(buckets.get(b) == want, f"{who} {hist} le={b}: {buckets.get(b)} vs {want}")
                checked += 1
            count = series(fam, fname + "_count", **ml)
            check(count == [len(obs)], f"{who} {hist} count: {count} vs {len(obs)}")
        checked += 1
    check(checked > 500, f"{checked} values checked")

    # Sums and load times exactly, from the text (a float would hide the last digits).
    exact = {}
    for m in re.finditer(r'^(finmaas_model_\w+_(?:sum)|finmaas_model_load_seconds)\{model="((?:[^"\\]|\\.)*)",version="(-?\d+)"\} (\S+)$', text, re.M):
        label = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))
        exact[(m.group(1), label, int(m.group(3)))] = Decimal(m.group(4))
    for st in state:
        key = (st["name"], st["version"])
        who = f"{st['name']!r} v{st['version']}"
        for hist in ("queue", "compute"):
            want = Decimal(sum(nanos(x) for x in st[hist])) / Decimal(10 ** 9)
            got = exact.get((f"finmaas_model_{hist}_seconds_sum",) + key)
            check(got == want, f"{who} {hist} sum: {got} vs {want}")
        got = exact.get(("finmaas_model_batch_size_sum",) + key)
        check(got == Decimal(sum(st["batch"])), f"{who} batch sum: {got} vs {sum(st['batch'])}")
        got = exact.get(("finmaas_model_load_seconds",) + key)
        want = Decimal(st["load"]) / Decimal(10 ** 6)
        check(got == want, f"{who} load seconds: {got} vs {want}")

    fam = families["finmaas_http_requests_total"]
    got = {int(l["code"]): v for n, l, v in fam["samples"]}
    check(got == http, f"http counts: {got} vs {http}")

    page = os.sysconf("SC_PAGE_SIZE")
    rss = series(families["process_resident_memory_bytes"], "process_resident_memory_bytes")
    check(len(rss) == 1 and 100 * 1024 <= rss[0] <= 1 << 30 and rss[0] % page == 0, f"rss {rss}")
    fds = series(families["process_open_fds"], "process_open_fds")
    check(len(fds) == 1 and 3 <= fds[0] < 1000, f"open fds {fds}")
    start = series(families["process_start_time_seconds"], "process_start_time_seconds")
    check(len(start) == 1 and started - 1 <= start[0] <= ended + 1,
          f"start time {start} within [{started}, {ended}]")


def compare_with_prometheus_client(raw, families):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("prometheus_client not importable: skipped its parser")
        return
    theirs = {}
    for fam in text_string_to_metric_families(raw.decode()):
        for s in fam.samples:
            theirs[(s.name, tuple(sorted(s.labels.items())))] = s.value
    ours = {}
    for fam in families.values():
        for n, l, v in fam["samples"]:
            ours[(n, tuple(sorted(l.items())))] = v
    check(set(theirs) == set(ours), "prometheus_client reads the same series")
    check(all(theirs[k] == ours[k] or (math.isnan(theirs[k]) and math.isnan(ours[k]))
              for k in ours if k in theirs), "prometheus_client reads the same values")


def run_tool(script):
    return subprocess.run([TOOL], input=script.encode(), capture_output=True, timeout=120)


def main():
    self_test_reader()
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        script, state, http = make_script(rng)
        started = time.time()
        p = run_tool(script)
        ended = time.time()
        if not check(p.returncode == 0, f"seed {seed}: tool exit {p.returncode}: {p.stderr.decode()}"):
            continue
        try:
            families = parse_exposition(p.stdout)
        except FormatError as e:
            check(False, f"seed {seed}: format: {e}")
            continue
        before = len(failures)
        compare(families, state, http, p.stdout, started, ended)
        compare_with_prometheus_client(p.stdout, families)
        print(f"{'ok  ' if len(failures) == before else 'FAIL'} seed {seed}: "
              f"{sum(len(f['samples']) for f in families.values())} samples, "
              f"{len(state)} model versions")

    # An empty registry still renders a valid exposition.
    p = run_tool("")
    families = parse_exposition(p.stdout)
    check(p.returncode == 0 and len(families) == 11, "empty registry renders 11 families")

    # Malformed tool input fails with the line named, instead of printing an exposition.
    for bad, what in (("model zz 1\n", "line 1"), ("model 61 1\nqueue 1 0.1\n", "line 2"),
                      ("model 61 1\nqueue 0 abc\n", "line 2"), ("model 61 1\nbatch 0 -1\n", "line 2"),
                      ("frobnicate\n", "line 1"), ("model 61 1 extra junk\n", "line 1"),
                      ("model " + "61" * 65 + " 1\n", "line 1")):
        p = run_tool(bad)
        check(p.returncode == 1 and what in p.stderr.decode() and not p.stdout,
              f"bad input {bad[:30]!r}: exit {p.returncode}, {p.stderr.decode().strip()}")

    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
