#!/usr/bin/python3
"""Serving benchmark: `finmaas serve` against nginx and a Flask + gunicorn + scikit-learn server.

One run, everything on loopback on this machine, every server started here on a free port and
stopped at the end (also on failure or Ctrl-C):

  * finmaas: the demo credit MLP (`finmaas train ... --model mlp --hidden 32,16 --seed 42`),
    registered with `finmaas models add` in a home of its own for each thread count, served by
    `finmaas serve --threads N` for each N of --threads (1 and 2 by default);
  * nginx (Debian), one worker, answering every request with a constant 200 whose body is a copy
    of finmaas's response to the benchmark request (so the same size); the ceiling;
  * a Flask app (bench/serve/flask_app.py) under `gunicorn -w 2` with one BLAS thread, serving a
    scikit-learn Pipeline trained here on the same CSV with the same settings; the peer.

The load is wrk (Debian, 4.1) with 1 thread and 32 connections, each request the same
single-row Open Inference Protocol V2 POST built from one real row of credit_data.csv
(bench/serve/post.lua). Every server's answer is checked before the load and again after every
wrk run; wrk's non-2xx responses and socket errors are reported. Each measurement is repeated
--repeat times, round-robin over the servers, and medians are quoted.

finmaas's p99 latency is also measured at about half of its peak rate: wrk 4.1 has no fixed-rate
mode, so each connection waits a fixed delay (1 ms) before its next request, and the number of
connections is calibrated (a few short probes) to land the achieved rate near half the peak.
Each of those runs is followed by nginx under the same wrk setting, as a control: the p99 that
the load generator and the shared CPUs leave of a server doing nothing.

The script prints a table, the ratios, one PASS/MISS line per goal (finmaas requests/s >= 0.5x
nginx's and >= 20x the Flask server's; p99 <= 2 ms at half of finmaas's peak rate), and writes
everything to bench/out/serve_bench.json. wrk and the server under test share the machine's CPUs;
the CPU each used is reported beside its figures.
"""

import argparse
import csv
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "bench" / "serve"
OUT_DIR = REPO / "bench" / "out"
PYTHON = "/usr/bin/python3"
WRK = "/usr/bin/wrk"
NGINX = "/usr/sbin/nginx"
GUNICORN = "/usr/bin/gunicorn"
HOST = "127.0.0.1"

MODEL = "credit"
TARGET = "Status"
POSITIVE = "bad"
REQUEST_ID = "bench"
INFER_PATH = f"/v2/models/{MODEL}/infer"
READY_PATH = "/v2/health/ready"

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The load: wrk with 1 thread and 32 connections.
WRK_THREADS = 1
WRK_CONNECTIONS = 32
# Untimed load before the first measured run of each server (caches, allocator, JIT-free but
# page-faulting code paths, gunicorn's workers importing lazily).
WARMUP_SECONDS = 2
# The half-peak calibration: a connection waits DELAY_MS between requests; probes are short.
HALF_DELAY_MS = 1
CALIBRATE_SECONDS = 3
CALIBRATE_PROBES = 7
# A probe whose rate is within this share of the target ends the calibration.
CALIBRATE_TOLERANCE = 0.03
CALIBRATE_FIRST_CONNECTIONS = 8
# Fewer connections than this make the achievable rates too coarse: lengthen the delay instead.
CALIBRATE_MIN_CONNECTIONS = 8
MAX_CONNECTIONS = 1000

# Goals the project set for itself (see bench/README.md).
GOAL_NGINX_RATIO = 0.5  # finmaas requests/s / nginx's, at least
GOAL_FLASK_RATIO = 20.0  # finmaas requests/s / the Flask server's, at least
GOAL_P99_MS = 2.0  # finmaas p99 at half its peak rate, at most

# CPU seconds per second used by other processes (before the start, or during a run) above which
# the figures are suspect: someone else is using the shared machine.
BUSY_OTHER_CPU = 0.25
READY_TIMEOUT = 60  # seconds for a server to answer its readiness check
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
COMMAND_TIMEOUT = 600  # seconds for training and registering the models
# The response nginx sends when finmaas is not measured: the contract's example response.
EXAMPLE_RESPONSE = (
    '{"model_name":"credit","model_version":"1","id":"bench","outputs":[{"name":"probability",'
    '"datatype":"FP32","shape":[1],"data":[0.1234]},{"name":"label","datatype":"BYTES",'
    '"shape":[1],"data":["good"]}]}'
)


class Failed(Exception):
    """A step that makes the rest of the run meaningless (a server that does not start)."""


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class Processes:
    """Every process this script starts, each in a session of its own so that stopping it stops
    its children too (nginx's worker, gunicorn's workers); stop_all runs on every exit path."""

    def __init__(self):
        self.running = []

    def start(self, argv, env_extra=None, log=None, cwd=None):
        env = dict(os.environ)
        env.update(env_extra or {})
        out = open(log, "ab") if log else subprocess.PIPE
        try:
            err = subprocess.STDOUT if log else subprocess.PIPE
            proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd, stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # fmt: skip
        finally:
            if log:
                out.close()
        self.running.append(proc)
        return proc

    def stop(self, proc):
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT; returns a note when the
        process needed SIGKILL or had already died, else None."""
        if proc not in self.running:
            return None
        self.running.remove(proc)
        note = None
        if proc.poll() is not None:
            note = f"had already exited with status {proc.returncode}"
        else:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                note = f"did not exit within {STOP_TIMEOUT} s of SIGTERM; killed"
        try:  # whatever is left in the group (a worker whose master died)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait()
        return note

    def stop_all(self):
        for proc in list(reversed(self.running)):
            self.stop(proc)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def free_port():
    """A port the kernel just handed out; the server binds it a moment later (a small race that
    start_server absorbs by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tree_cpu_seconds(root):
    """User + system CPU seconds of root and all its live descendants (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        # Fields after the command: state, ppid, ..., utime and stime are the 12th and 13th.
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return total / ticks


def machine_busy_seconds():
    """CPU seconds all CPUs have spent busy since boot (/proc/stat: everything but idle and
    iowait among user, nice, system, idle, iowait, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(argv, label, env_extra=None, cwd=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    try:
        proc = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise Failed(f"{label} did not finish in {COMMAND_TIMEOUT} s")
    if proc.returncode != 0:
        raise Failed(f"{label} failed (exit {proc.returncode})\n"
                     f"  command: {' '.join(str(a) for a in argv)}\n"
                     f"  stdout: {proc.stdout.strip()[-2000:]!r}\n"
                     f"  stderr: {proc.stderr.strip()[-2000:]!r}")  # fmt: skip
    return proc.stdout


def tail(path, lines=20):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# HTTP checks
# --------------------------------------------------------------------------------------------


def auth_headers(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def http(method, url, body=None, headers=None, timeout=10):
    """(status, body bytes, content type) of one request; HTTP errors are answers, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def check_v2_response(status, body, model_version=None):
    """Problems with a V2 infer response to the benchmark request (empty when it is right), and
    the probability and label it gives."""
    problems = []
    if status != 200:
        return [f"status {status}, body {body[:300]!r}"], None, None
    try:
        value = json.loads(body)
    except ValueError as e:
        return [f"body is not JSON ({e}): {body[:300]!r}"], None, None
    if not isinstance(value, dict):
        return [f"body is not a JSON object: {body[:300]!r}"], None, None
    if value.get("model_name") != MODEL:
        problems.append(f"model_name is {value.get('model_name')!r}, not {MODEL!r}")
    if model_version is not None and value.get("model_version") != model_version:
        problems.append(f"model_version is {value.get('model_version')!r}, not "
                        f"{model_version!r}")  # fmt: skip
    elif not isinstance(value.get("model_version"), str):
        problems.append(f"model_version is {value.get('model_version')!r}, not a string")
    if value.get("id") != REQUEST_ID:
        problems.append(f"id is {value.get('id')!r}, not {REQUEST_ID!r}")
    outputs = value.get("outputs")
    tensors = {}
    if not isinstance(outputs, list):
        problems.append(f"outputs is {outputs!r}, not an array")
    else:
        for tensor in outputs:
            if isinstance(tensor, dict) and isinstance(tensor.get("name"), str):
                tensors[tensor["name"]] = tensor
    probability = label = None
    expected = {"probability": ("FP32", lambda v: isinstance(v, (int, float))
                                and not isinstance(v, bool) and 0 <= v <= 1),
                "label": ("BYTES", lambda v: v in ("good", "bad"))}  # fmt: skip
    for name, (datatype, valid) in expected.items():
        tensor = tensors.get(name)
        if tensor is None:
            problems.append(f"no output tensor {name!r}")
            continue
        if tensor.get("datatype") != datatype:
            problems.append(f"output {name!r} has datatype {tensor.get('datatype')!r}, "
                            f"not {datatype!r}")  # fmt: skip
        if tensor.get("shape") != [1]:
            problems.append(f"output {name!r} has shape {tensor.get('shape')!r}, not [1]")
        data = tensor.get("data")
        if not isinstance(data, list) or len(data) != 1 or not valid(data[0]):
            problems.append(f"output {name!r} has data {data!r}")
        elif name == "probability":
            probability = float(data[0])
        else:
            label = data[0]
    if probability is not None and label is not None:
        if label != (POSITIVE if probability >= 0.5 else "good") and probability != 0.5:
            problems.append(f"label {label!r} does not follow probability {probability}")
    return problems, probability, label


def wait_ready(proc, url, headers, log, name):
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"{name} exited with status {proc.returncode} before it was ready; "
                         f"its log ({log}):\n{tail(log)}")  # fmt: skip
        try:
            status, body, _ = http("GET", url, headers=headers, timeout=2)
            if status == 200:
                return
            last = f"status {status}: {body[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    raise Failed(f"{name} was not ready within {READY_TIMEOUT} s ({url}: {last}); "
                 f"its log ({log}):\n{tail(log)}")  # fmt: skip


# --------------------------------------------------------------------------------------------
# The request, the models and the servers
# --------------------------------------------------------------------------------------------


def request_body(data_path, row_number):
    """The V2 request for one row of the CSV file (1 = the first data row): one tensor per raw
    column except the target, FP64 for numeric columns (NA as null), BYTES for the others."""
    with open(data_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or TARGET not in rows[0]:
        raise Failed(f"{data_path}: no rows or no column {TARGET!r}")
    if not 1 <= row_number <= len(rows):
        raise Failed(f"--row {row_number}: {data_path} has {len(rows)} data rows")

    def number(text):
        try:
            return float(text)
        except ValueError:
            return None

    columns = [c for c in rows[0] if c != TARGET]
    numeric = {c for c in columns if all(r[c] in ("", "NA") or number(r[c]) is not None
                                         for r in rows)}  # fmt: skip
    row = rows[row_number - 1]
    inputs = []
    for c in columns:
        missing = row[c] in ("", "NA")
        if c in numeric:
            value = None if missing else float(row[c])
            inputs.append({"name": c, "shape": [1], "datatype": "FP64", "data": [value]})
        else:
            value = None if missing else row[c]
            inputs.append({"name": c, "shape": [1], "datatype": "BYTES", "data": [value]})
    # json.dumps' default separators: the request the project's measurements used (949 bytes).
    body = json.dumps({"id": REQUEST_ID, "inputs": inputs}).encode()
    return body, {c: row[c] for c in rows[0]}


class Server:
    def __init__(self, key, title, kind):
        self.key, self.title, self.kind = key, title, kind
        self.proc = self.url = self.log = None
        self.alive = True
        self.runs = []  # peak measurements
        self.warmup = None
        self.half = None  # finmaas only: the half-peak calibration and runs
        self.stop_note = None
        self.extra = {}

    @property
    def infer_url(self):
        return self.url + INFER_PATH


def start_server(procs, server, make_argv, ready_path, headers, env_extra=None, cwd=None):
    """Starts a server on a free port (retrying a port taken in the meantime) and waits until
    ready_path answers 200."""
    for attempt in range(3):
        port = free_port()
        server.url = f"http://{HOST}:{port}"
        server.proc = procs.start(make_argv(port), env_extra, server.log, cwd)
        try:
            wait_ready(server.proc, server.url + ready_path, headers, server.log, server.title)
            server.extra["port"] = port
            return
        except Failed:
            in_use = "in use" in tail(server.log, 5).lower()
            procs.stop(server.proc)
            if attempt == 2 or not in_use:
                raise


def finmaas_version(finmaas):
    proc = subprocess.run([finmaas, "--version"], capture_output=True, text=True)
    return proc.stdout.strip()


def build_type(finmaas):
    """CMAKE_BUILD_TYPE of the build tree holding finmaas (empty means the project's Release)."""
    cache = Path(finmaas).resolve().parent / "CMakeCache.txt"
    try:
        match = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache.read_text(), re.M)
    except OSError:
        return "unknown"
    value = match.group(1).strip() if match else ""
    return value or "Release"


def nginx_quote(text):
    """text as an nginx single-quoted string's contents. nginx has no escape for '$' (it starts
    a variable), so each one becomes '_' (same size); the JSON body carries none in practice."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("$", "_")


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------

TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_wrk(text):
    """requests/s, latency percentiles (ms), requests, non-2xx responses and socket errors from
    `wrk --latency` output; None where a line is missing."""

    def time_ms(value, unit):
        return float(value) * TIME_UNITS_MS[unit]

    result = {"rps": None, "requests": None, "seconds": None, "non2xx": 0,
              "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}  # fmt: skip
    match = re.search(r"^Requests/sec:\s+([\d.]+)\s*$", text, re.M)
    if match:
        result["rps"] = float(match.group(1))
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        result[f"p{pct}_ms"] = time_ms(*match.groups()) if match else None
    match = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    if match:
        result["requests"] = int(match.group(1))
        result["seconds"] = time_ms(match.group(2), match.group(3)) / 1000
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      text)  # fmt: skip
    if match:
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                           map(int, match.groups())))  # fmt: skip
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if match:
        result["non2xx"] = int(match.group(1))
    return result


def run_wrk(procs, server, body_file, token, seconds, connections, delay_ms=0):
    """One wrk run against server; its parsed figures plus the CPU the server and wrk used."""
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", HERE / "post.lua", server.infer_url]  # fmt: skip
    env = {"FM_BENCH_BODY": str(body_file), "FM_BENCH_TOKEN": token or "",
           "FM_BENCH_DELAY_MS": str(delay_ms)}  # fmt: skip
    busy = machine_busy_seconds()
    server_cpu = tree_cpu_seconds(server.proc.pid)
    wrk_cpu = children_cpu_seconds()
    started = time.perf_counter()
    proc = procs.start(argv, env)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        raise Failed(f"wrk against {server.title} did not finish within {seconds + 60} s")
    procs.running.remove(proc)
    wall = time.perf_counter() - started
    text = out.decode(errors="replace") + err.decode(errors="replace")
    result = parse_wrk(text)
    result.update(connections=connections, delay_ms=delay_ms, wall=wall, wrk_exit=proc.returncode,
                  server_cpu=(tree_cpu_seconds(server.proc.pid) - server_cpu) / wall,
                  wrk_cpu=(children_cpu_seconds() - wrk_cpu) / wall, output=text)  # fmt: skip
    # What the rest of the machine used meanwhile: other people's work on a shared machine.
    result["other_cpu"] = max((machine_busy_seconds() - busy) / wall - result["server_cpu"]
                              - result["wrk_cpu"], 0.0)  # fmt: skip
    return result


def run_problems(result):
    """What went wrong in one wrk run, as text (empty when nothing did)."""
    problems = []
    if result["wrk_exit"] != 0 or result["rps"] is None or result["p99_ms"] is None:
        problems.append(f"wrk exited with status {result['wrk_exit']} or printed no figures: "
                        f"{result['output'].strip()[-1000:]!r}")  # fmt: skip
    if result["non2xx"]:
        problems.append(f"{result['non2xx']} non-2xx/3xx responses of {result['requests']}")
    errors = {k: v for k, v in result["socket_errors"].items() if v}
    if errors:
        problems.append("socket errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    return problems


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_rate(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value):
    return "-" if value is None else f"{value:.3f} ms"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def fmt_cpu(value):
    return "-" if value is None else f"{value:.2f}"


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(r)))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


def summarise(runs):
    good = [r for r in runs if r["rps"] is not None]
    return {"rps": median([r["rps"] for r in good]), "p50_ms": median([r["p50_ms"] for r in good]),
            "p99_ms": median([r["p99_ms"] for r in good]),
            "server_cpu": median([r["server_cpu"] for r in good]),
            "wrk_cpu": median([r["wrk_cpu"] for r in good]),
            "other_cpu": median([r["other_cpu"] for r in good]), "runs": len(good)}  # fmt: skip


def machine_info(finmaas):
    info = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = re.findall(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    for package in ("scikit-learn", "Flask", "gunicorn", "numpy", "pandas"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
    info["nginx"] = (nginx.stderr + nginx.stdout).strip().split("/")[-1]
    wrk = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    match = re.search(r"wrk (\S+)", wrk.stdout + wrk.stderr)
    info["wrk"] = match.group(1) if match else None
    try:
        info["git"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        pass
    if finmaas:
        info["finmaas"] = finmaas_version(finmaas)
        info["finmaas_build_type"] = build_type(finmaas)
    return info


class Benchmark:
    def __init__(self, opts, procs):
        self.opts = opts
        self.procs = procs
        self.finmaas = None if opts.no_finmaas else str(Path(opts.finmaas).resolve())
        self.token = os.environ.get("FINMAAS_TOKEN") or None
        self.headers = auth_headers(self.token)
        self.problems = []
        self.servers = []
        self.work = None

    def problem(self, text):
        self.problems.append(text)
        print(f"PROBLEM: {text}", flush=True)

    # ---- setup ------------------------------------------------------------------------------

    def train_finmaas(self):
        model = self.work / "credit.fmm"
        run_command([self.finmaas, "train", "--data", self.opts.data, "--target", TARGET,
                     "--positive", POSITIVE, "--model", "mlp", "--hidden", "32,16", "--seed",
                     "42", "--quiet", "--out", model], "finmaas train", ONE_THREAD)  # fmt: skip
        return model

    def start_finmaas(self, model, threads):
        server = Server(f"finmaas-t{threads}", f"finmaas serve --threads {threads}", "finmaas")
        home = self.work / f"home-t{threads}"
        out = run_command([self.finmaas, "models", "add", "--home", home, "--name", MODEL, model],
                          "finmaas models add")  # fmt: skip
        versions = re.findall(r"\d+", out)
        server.extra.update(home=str(home), threads=threads,
                            version=versions[-1] if versions else None)  # fmt: skip
        server.log = self.work / f"finmaas-t{threads}.log"
        start_server(self.procs, server,
                     lambda port: [self.finmaas, "serve", "--home", home, "--listen",
                                   f"{HOST}:{port}", "--threads", threads]
                     + self.opts.serve_args,
                     READY_PATH, self.headers, ONE_THREAD)  # fmt: skip
        return server

    def start_flask(self):
        server = Server("flask", "Flask + gunicorn -w 2 + scikit-learn", "flask")
        model = self.work / "sklearn.pkl"
        out = run_command([PYTHON, HERE / "flask_app.py", "train", "--data", self.opts.data,
                           "--out", model], "training the scikit-learn model",
                          ONE_THREAD)  # fmt: skip
        server.extra["training"] = json.loads(out.strip().splitlines()[-1])
        server.log = self.work / "gunicorn.log"
        env = dict(ONE_THREAD, FM_BENCH_MODEL=str(model))
        start_server(self.procs, server,
                     lambda port: [GUNICORN, "-w", "2", "-b", f"{HOST}:{port}", "--chdir", HERE,
                                   "--log-level", "warning", "flask_app:create_app()"],
                     READY_PATH, self.headers, env)  # fmt: skip
        return server

    def start_nginx(self, response_body):
        server = Server("nginx", "nginx, 1 worker, return 200", "nginx")
        prefix = self.work / "nginx"
        prefix.mkdir()
        server.log = prefix / "stderr.log"
        config = prefix / "nginx.conf"
        template = (HERE / "nginx.conf.in").read_text()

        def make_argv(port):
            text = (template.replace("@PREFIX@", str(prefix)).replace("@HOST@", HOST)
                    .replace("@PORT@", str(port))
                    .replace("@BODY@", nginx_quote(response_body.decode())))  # fmt: skip
            config.write_text(text)
            return [NGINX, "-c", config, "-p", prefix, "-e", prefix / "error.log"]

        start_server(self.procs, server, make_argv, "/", self.headers)
        server.extra["body_bytes"] = len(response_body)
        return server

    def check(self, server, when):
        """Sends the benchmark request once; records and prints what is wrong with the answer.
        Returns the answer's body, probability and label (None when it is wrong)."""
        if server.proc.poll() is not None:
            self.problem(f"{server.title} is no longer running (exit status "
                         f"{server.proc.returncode}) {when}; its log ({server.log}):\n"
                         f"{tail(server.log)}")  # fmt: skip
            server.alive = False
            return None, None, None
        try:
            status, body, content_type = http("POST", server.infer_url, self.body,
                                              dict(self.headers,
                                                   **{"Content-Type": "application/json"}))
        except OSError as e:
            self.problem(f"{server.title} did not answer the benchmark request {when}: {e}")
            return None, None, None
        if server.kind == "nginx":
            ok = status == 200 and body == server.extra["body"]
            if not ok:
                self.problem(f"{server.title} answered {status} {body[:200]!r} {when}")
            return body if ok else None, None, None
        version = server.extra.get("version") if server.kind == "finmaas" else None
        problems, probability, label = check_v2_response(status, body, version)
        if "json" not in content_type.lower():
            problems.append(f"Content-Type is {content_type!r}")
        for p in problems:
            self.problem(f"{server.title} {when}: {p}")
        return (None if problems else body), probability, label

    def predicted_probability(self, model):
        """P(positive) for the request row from `finmaas predict` on a one-row CSV of it: the
        served probability is checked against it (None when predict writes no such column)."""
        row_csv = self.work / "row.csv"
        pred_csv = self.work / "row-pred.csv"
        with open(row_csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.row), quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            writer.writerow(self.row)
        run_command([self.finmaas, "predict", "--model", model, "--data", row_csv, "--out",
                     pred_csv], "finmaas predict (one row)", ONE_THREAD)  # fmt: skip
        with open(pred_csv, newline="") as f:
            predicted = next(csv.DictReader(f))
        column = f"p_{POSITIVE}"
        if column not in predicted:
            self.problem(f"finmaas predict wrote no column {column!r} ({list(predicted)}); "
                         "the served probability is not cross-checked")  # fmt: skip
            return None
        return float(predicted[column])

    # ---- measuring --------------------------------------------------------------------------

    def measure(self, server, seconds, connections, delay_ms=0, label="run"):
        result = run_wrk(self.procs, server, self.body_file, self.token, seconds, connections,
                         delay_ms)  # fmt: skip
        for p in run_problems(result):
            self.problem(f"{server.title}, {label} (wrk -c{connections}"
                         + (f", delay {delay_ms} ms" if delay_ms else "") + f"): {p}")
        self.check(server, f"after {label}")
        return result

    def calibrate_half(self, server, target):
        """(connections, delay ms, probes): the wrk setting whose achieved rate came closest to
        target, from a few short probes. The rate is not proportional to the connections (wrk's
        loop slows as they grow), so once two probes bracket the target the next guess
        interpolates between them; until then it scales the nearest probe's rate per
        connection."""
        probes = []

        def probe(connections, delay_ms):
            result = self.measure(server, CALIBRATE_SECONDS, connections, delay_ms,
                                  "half-peak calibration")  # fmt: skip
            probes.append(result)
            print(f"  calibration: -c{connections} delay {delay_ms} ms -> "
                  f"{fmt_rate(result['rps'])} requests/s (target {fmt_rate(target)})",
                  flush=True)  # fmt: skip
            return result["rps"]

        def close_enough(rate):
            return abs(rate - target) <= CALIBRATE_TOLERANCE * target

        connections, delay_ms = CALIBRATE_FIRST_CONNECTIONS, HALF_DELAY_MS
        rate = probe(connections, delay_ms)
        if rate:
            cycle = connections / rate  # seconds per request on one connection
            if target * cycle < CALIBRATE_MIN_CONNECTIONS:
                # Too few connections would reach the target: wait longer between requests.
                overhead = max(cycle - delay_ms / 1000, 0)
                delay_ms = max(HALF_DELAY_MS,
                               round((CALIBRATE_MIN_CONNECTIONS / target - overhead) * 1000))
                connections = max(1, round(target * (overhead + delay_ms / 1000)))
                rate = probe(connections, delay_ms)
        for _ in range(CALIBRATE_PROBES - len(probes)):
            if not rate or not server.alive:
                break
            same = [p for p in probes if p["delay_ms"] == delay_ms and p["rps"]]
            if any(close_enough(p["rps"]) for p in same):
                break
            below = [p for p in same if p["rps"] < target]
            above = [p for p in same if p["rps"] > target]
            lo = max(below, key=lambda p: p["connections"], default=None)
            hi = min(above, key=lambda p: p["connections"], default=None)
            if lo and hi and lo["connections"] < hi["connections"]:
                if hi["connections"] - lo["connections"] <= 1:
                    break
                share = (target - lo["rps"]) / (hi["rps"] - lo["rps"])
                following = lo["connections"] + share * (hi["connections"] - lo["connections"])
                following = min(max(round(following), lo["connections"] + 1),
                                hi["connections"] - 1)  # fmt: skip
            else:
                nearest = min(same, key=lambda p: abs(p["rps"] - target))
                following = round(target * nearest["connections"] / nearest["rps"])
            following = max(1, min(MAX_CONNECTIONS, following))
            # Noise can make a guess repeat an earlier probe (a larger count once gave less):
            # step past the probed counts in the direction that probe says the target lies.
            probed = {p["connections"]: p["rps"] for p in same}
            if following in probed:
                step = 1 if probed[following] < target else -1
                while following in probed:
                    following += step
                if not 1 <= following <= MAX_CONNECTIONS:
                    break
            connections = following
            rate = probe(connections, delay_ms)
        usable = [p for p in probes if p["rps"] is not None]
        if not usable:
            return None, None, probes
        best = min(usable, key=lambda p: abs(p["rps"] - target))
        return best["connections"], best["delay_ms"], probes

    def run(self):
        opts = self.opts
        if self.finmaas and not os.access(self.finmaas, os.X_OK):
            raise Failed(f"no finmaas executable at {self.finmaas} (build it, pass "
                         "--finmaas PATH, or --no-finmaas)")  # fmt: skip
        for tool in (WRK, NGINX, GUNICORN):
            if not os.access(tool, os.X_OK):
                raise Failed(f"{tool} is missing (Debian packages wrk, nginx-light, gunicorn)")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="serve-", dir=OUT_DIR))
        machine = machine_info(self.finmaas)
        busy = machine_busy_seconds()
        time.sleep(1)
        machine["busy_cpu_at_start"] = machine_busy_seconds() - busy
        self.body, self.row = request_body(opts.data, opts.row)
        self.body_file = self.work / "request.json"
        self.body_file.write_bytes(self.body)
        print(f"machine: {machine['cpu']}, {machine['cpus']} CPUs; wrk {machine['wrk']}, nginx "
              f"{machine['nginx']}, gunicorn {machine['gunicorn']}, Flask {machine['Flask']}, "
              f"scikit-learn {machine['scikit-learn']}"
              + (f"; {machine['finmaas']} ({machine['finmaas_build_type']})"
                 if self.finmaas else ""))  # fmt: skip
        if machine["busy_cpu_at_start"] > BUSY_OTHER_CPU:
            print(textwrap.fill(f"WARNING: the machine is busy before the benchmark starts "
                                f"(other processes use {machine['busy_cpu_at_start']:.2f} CPU): "
                                "figures may be low and noisy; see the 'other CPU' column",
                                100))  # fmt: skip
        if self.finmaas and machine["finmaas_build_type"] != "Release":
            print(f"WARNING: finmaas is not a Release build "
                  f"({machine['finmaas_build_type']}); its figures are not representative")
        print(f"request: POST {INFER_PATH}, {len(self.body)} bytes of V2 JSON (row {opts.row} "
              f"of {Path(opts.data).name}, {len(self.row) - 1} tensors)"
              + (", with Authorization: Bearer $FINMAAS_TOKEN" if self.token else ""))
        if opts.serve_args:
            print(f"finmaas serve runs with {shlex.join(opts.serve_args)}")
        print(f"load: wrk -t{WRK_THREADS} -c{opts.connections} -d{opts.duration}s --latency, "
              f"{opts.repeat} rounds over the servers (medians quoted); work files in "
              f"{self.work}", flush=True)  # fmt: skip

        # Servers: finmaas first, since nginx answers with a copy of finmaas's response.
        finmaas_servers = []
        response_body = None
        model = None
        if self.finmaas:
            model = self.train_finmaas()
            expected = self.predicted_probability(model)
            for threads in opts.threads:
                server = self.start_finmaas(model, threads)
                finmaas_servers.append(server)
                body, probability, label = self.check(server, "before the load")
                if body is None:
                    raise Failed(f"{server.title} does not answer the benchmark request "
                                 "correctly; nothing to measure")  # fmt: skip
                server.extra.update(response=body.decode(errors="replace"),
                                    probability=probability, label=label)  # fmt: skip
                # The server answers in FP32: 1e-6 relative, and float32's spacing near 0.
                if expected is not None and not math.isclose(probability, expected,
                                                             rel_tol=1e-6, abs_tol=1e-7):
                    self.problem(f"{server.title} answered P({POSITIVE}) = {probability} for "
                                 f"the request row; finmaas predict gives {expected} for the "
                                 "same row")  # fmt: skip
                response_body = response_body or body
            server = finmaas_servers[0]
            print(f"finmaas: model version {server.extra['version']}, response "
                  f"{len(response_body)} bytes, P({POSITIVE}) = {server.extra['probability']}"
                  f" (finmaas predict on the same row: {expected})", flush=True)  # fmt: skip
        flask = self.start_flask()
        body, probability, _ = self.check(flask, "before the load")
        if body is None:
            raise Failed(f"{flask.title} does not answer the benchmark request correctly")
        flask.extra.update(response=body.decode(errors="replace"), probability=probability)
        training = flask.extra["training"]
        print(f"Flask: scikit-learn Pipeline trained in {training['epochs_run']} epochs "
              f"(training AUC {training['train_auc']:.3f}), response {len(body)} bytes, "
              f"P({POSITIVE}) = {probability}", flush=True)  # fmt: skip
        if response_body is None:
            response_body = EXAMPLE_RESPONSE.encode()
        nginx = self.start_nginx(response_body)
        nginx.extra["body"] = response_body
        if self.check(nginx, "before the load")[0] is None:
            raise Failed(f"{nginx.title} does not answer with its configured body")
        print(f"nginx: answers every request with a {len(response_body)}-byte copy of "
              + ("finmaas's response" if self.finmaas else "the contract's example response")
              + "\n", flush=True)
        self.servers = [nginx, flask] + finmaas_servers

        # Peak rate: a warm-up, then --repeat rounds over the servers.
        for server in self.servers:
            server.warmup = self.measure(server, WARMUP_SECONDS, opts.connections, 0, "warm-up")
        for r in range(opts.repeat):
            for server in self.servers:
                if not server.alive:
                    continue
                result = self.measure(server, opts.duration, opts.connections, 0,
                                      f"round {r + 1}")  # fmt: skip
                server.runs.append(result)
                print(f"round {r + 1}/{opts.repeat}: {server.title:<40} "
                      f"{fmt_rate(result['rps']):>9} requests/s, p50 {fmt_ms(result['p50_ms'])},"
                      f" p99 {fmt_ms(result['p99_ms'])}; CPU: server "
                      f"{fmt_cpu(result['server_cpu'])}, wrk {fmt_cpu(result['wrk_cpu'])}, other "
                      f"{fmt_cpu(result['other_cpu'])}",
                      flush=True)  # fmt: skip

        # finmaas's p99 at about half its peak rate.
        for server in finmaas_servers:
            peak = summarise(server.runs)["rps"]
            if not server.alive or not peak:
                continue
            target = peak / 2
            print(f"\n{server.title}: latency at half its peak rate ({fmt_rate(target)} "
                  "requests/s)", flush=True)  # fmt: skip
            connections, delay_ms, probes = self.calibrate_half(server, target)
            half = {"target_rps": target, "connections": connections, "delay_ms": delay_ms,
                    "probes": probes, "runs": [], "nginx_runs": []}  # fmt: skip
            server.half = half
            if connections is None:
                continue
            for r in range(opts.repeat):
                if not server.alive:
                    break
                result = self.measure(server, opts.duration, connections, delay_ms,
                                      f"half-peak run {r + 1}")  # fmt: skip
                half["runs"].append(result)
                print(f"  run {r + 1}/{opts.repeat}: wrk -c{connections}, delay {delay_ms} ms: "
                      f"{fmt_rate(result['rps'])} requests/s "
                      f"({ratio(result['rps'], peak) or 0:.0%} of peak), "
                      f"p50 {fmt_ms(result['p50_ms'])}, p99 {fmt_ms(result['p99_ms'])}",
                      flush=True)  # fmt: skip
                # The control: nginx under the same wrk setting, so about the same rate. Its p99
                # is what the load generator and the shared CPUs leave of a trivial server's.
                if not nginx.alive:
                    continue
                control = self.measure(nginx, opts.duration, connections, delay_ms,
                                       f"half-peak control run {r + 1}")  # fmt: skip
                half["nginx_runs"].append(control)
                print(f"  control {r + 1}/{opts.repeat}: {nginx.title}, the same setting: "
                      f"{fmt_rate(control['rps'])} requests/s, p50 {fmt_ms(control['p50_ms'])}, "
                      f"p99 {fmt_ms(control['p99_ms'])}", flush=True)  # fmt: skip

        for server in self.servers:
            note = self.procs.stop(server.proc)
            server.stop_note = note
            if note:
                self.problem(f"{server.title} {note} at the end; log ({server.log}):\n"
                             f"{tail(server.log)}")  # fmt: skip
            elif server.proc.returncode not in (0, -signal.SIGTERM):
                print(f"note: {server.title} exited with status {server.proc.returncode} on "
                      "SIGTERM")  # fmt: skip
            if server.kind == "finmaas":
                # Its default access log (<home>/access.log) is part of what it does per request.
                access_log = Path(server.extra["home"]) / "access.log"
                if access_log.exists():
                    server.extra["access_log_bytes"] = access_log.stat().st_size
                    print(f"note: {server.title} wrote {access_log.stat().st_size / 2**20:.0f} "
                          f"MiB of access log ({access_log.name} in its home)")  # fmt: skip
        return self.report(machine, nginx, flask, finmaas_servers)

    # ---- report -----------------------------------------------------------------------------

    def report(self, machine, nginx, flask, finmaas_servers):
        opts = self.opts
        stats = {s.key: summarise(s.runs) for s in self.servers}
        half_stats = {s.key: summarise(s.half["runs"]) for s in finmaas_servers if s.half}
        control_stats = {s.key: summarise(s.half["nginx_runs"]) for s in finmaas_servers
                         if s.half}  # fmt: skip
        print()
        table = [["server (median)", "requests/s", "p50", "p99", "server CPU", "wrk CPU",
                  "other CPU", "vs nginx", "vs Flask"]]  # fmt: skip
        for s in self.servers:
            st = stats[s.key]
            table.append([s.title, fmt_rate(st["rps"]), fmt_ms(st["p50_ms"]),
                          fmt_ms(st["p99_ms"]), fmt_cpu(st["server_cpu"]),
                          fmt_cpu(st["wrk_cpu"]), fmt_cpu(st["other_cpu"]),
                          fmt_ratio(ratio(st["rps"], stats["nginx"]["rps"])),
                          fmt_ratio(ratio(st["rps"], stats["flask"]["rps"]))])  # fmt: skip
        for s in finmaas_servers:
            if s.key not in half_stats:
                continue
            st = half_stats[s.key]
            setting = f"-c{s.half['connections']}, delay {s.half['delay_ms']} ms"
            table.append([f"{s.title}, half peak ({setting})", fmt_rate(st["rps"]),
                          fmt_ms(st["p50_ms"]), fmt_ms(st["p99_ms"]), fmt_cpu(st["server_cpu"]),
                          fmt_cpu(st["wrk_cpu"]), fmt_cpu(st["other_cpu"]), "", ""])  # fmt: skip
            ct = control_stats[s.key]
            if ct["runs"]:
                table.append(["  control: nginx, the same setting", fmt_rate(ct["rps"]),
                              fmt_ms(ct["p50_ms"]), fmt_ms(ct["p99_ms"]),
                              fmt_cpu(ct["server_cpu"]), fmt_cpu(ct["wrk_cpu"]),
                              fmt_cpu(ct["other_cpu"]), "", ""])  # fmt: skip
        print_table(table)
        print()
        notes = (
            f"notes: all on loopback; wrk (1 thread) and the server under test share this "
            f"machine's {machine['cpus']} CPUs, so a server can use about "
            f"{max(machine['cpus'] - 1, 1)} CPU while wrk takes the other. 'server CPU' and "
            "'wrk CPU' are CPU seconds per second during the runs (all processes of the server); "
            "'other CPU' is what the rest of the machine used meanwhile (other work on a shared "
            "machine, which lowers every figure). "
            "nginx answers a constant of the size of finmaas's response and reads and discards "
            "the request body; the Flask server parses the same request and runs a scikit-learn "
            "Pipeline (gunicorn's sync workers close the connection after each response; the "
            "other servers keep it alive)."
        )
        print(textwrap.fill(notes, 100))
        others = [st["other_cpu"] for st in list(stats.values()) + list(half_stats.values())
                  if st["other_cpu"] is not None]  # fmt: skip
        if others and max(others) > BUSY_OTHER_CPU:
            print(textwrap.fill(f"WARNING: other processes used up to {max(others):.2f} CPU "
                                "during the runs (median per server): the machine was shared, "
                                "so every figure is low; rerun on a quiet machine before "
                                "relying on one", 100))  # fmt: skip
        print()

        best = None
        if finmaas_servers:
            best = max(finmaas_servers, key=lambda s: stats[s.key]["rps"] or 0)
            for s in finmaas_servers:
                st, ng, fl = stats[s.key], stats["nginx"], stats["flask"]
                line = (f"{s.title}: {fmt_ratio(ratio(st['rps'], ng['rps']))} nginx's "
                        f"requests/s, {fmt_ratio(ratio(st['rps'], fl['rps']))} the Flask "
                        f"server's; p50 {fmt_ratio(ratio(st['p50_ms'], ng['p50_ms']))} nginx's, "
                        f"p99 {fmt_ratio(ratio(st['p99_ms'], ng['p99_ms']))} nginx's")
                if s.key in half_stats:
                    hs = half_stats[s.key]
                    line += (f"; at {fmt_rate(hs['rps'])} requests/s "
                             f"({ratio(hs['rps'], st['rps']) or 0:.0%} of its peak) p99 is "
                             f"{fmt_ms(hs['p99_ms'])}")  # fmt: skip
                    ct = control_stats[s.key]
                    if ct["runs"]:
                        line += (f" (nginx at {fmt_rate(ct['rps'])} requests/s under the same "
                                 f"wrk setting: {fmt_ms(ct['p99_ms'])})")  # fmt: skip
                print(textwrap.fill(line, 100, subsequent_indent="    "))
            print(f"goals use {best.title}, the one with more requests/s")
        print()

        goals = []

        def goal(name, value, target, higher_is_better, unit="x", detail="", **extra):
            ok = value is not None and (value >= target if higher_is_better else value <= target)
            sign = ">=" if higher_is_better else "<="
            shown = "n/a" if value is None else (f"{value:.3f}" + unit if unit == "x"
                                                 else f"{value:.3f} {unit}")  # fmt: skip
            target_shown = f"{target:g}" + unit if unit == "x" else f"{target:g} {unit}"
            status = "PASS" if ok else ("SKIP" if not finmaas_servers else "MISS")
            goals.append({"goal": name, "value": value, "target": target, "status": status,
                          "finmaas": best.title if best else None, **extra})  # fmt: skip
            print(f"{status} {name}: {shown} (goal {sign} {target_shown}){detail}")

        best_rps = stats[best.key]["rps"] if best else None
        best_half = half_stats.get(best.key) if best else None
        goal("finmaas requests/s vs nginx's", ratio(best_rps, stats["nginx"]["rps"]),
             GOAL_NGINX_RATIO, True)  # fmt: skip
        goal("finmaas requests/s vs the Flask server's", ratio(best_rps, stats["flask"]["rps"]),
             GOAL_FLASK_RATIO, True)  # fmt: skip
        half_rps = best_half["rps"] if best_half else None
        goal("finmaas p99 at half its peak rate", best_half["p99_ms"] if best_half else None,
             GOAL_P99_MS, False, "ms",
             f", at {fmt_rate(half_rps)} requests/s ({ratio(half_rps, best_rps):.0%} of "
             f"{fmt_rate(best_rps)})" if half_rps else "",
             achieved_rps=half_rps, peak_rps=best_rps)  # fmt: skip

        def server_json(s):
            extra = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v)
                     for k, v in s.extra.items()}  # fmt: skip
            return {"title": s.title, "kind": s.kind, "median": stats[s.key],
                    "half_peak": dict(s.half, median=half_stats.get(s.key),
                                      nginx_median=control_stats.get(s.key))
                    if s.half else None,
                    "warmup": s.warmup, "runs": s.runs, "alive_to_the_end": s.alive,
                    "stop_note": s.stop_note, "exit_status": s.proc.returncode,
                    **extra}  # fmt: skip

        results = {
            "benchmark": "serve_bench", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine,
            "settings": {"wrk_threads": WRK_THREADS, "connections": opts.connections,
                         "duration_s": opts.duration, "repeat": opts.repeat,
                         "warmup_s": WARMUP_SECONDS, "calibrate_s": CALIBRATE_SECONDS,
                         "half_delay_ms": HALF_DELAY_MS, "finmaas_threads": opts.threads,
                         "finmaas_serve_args": opts.serve_args,
                         "data": str(opts.data), "row": opts.row, "token": bool(self.token),
                         "request_bytes": len(self.body)},
            "request": self.body.decode(),
            "servers": {s.key: server_json(s) for s in self.servers},
            "goals": goals, "problems": self.problems,
        }  # fmt: skip
        json_path = OUT_DIR / "serve_bench.json"
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {json_path}")
        if self.problems:
            print(f"{len(self.problems)} problem(s); see the PROBLEM lines above")
        return 1 if self.problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finmaas", default=str(REPO / "build" / "finmaas"),
                        help="the finmaas executable (default: build/finmaas in the repository)")
    parser.add_argument("--no-finmaas", action="store_true",
                        help="measure nginx and the Flask server only")
    parser.add_argument("--threads", default="1,2",
                        help="finmaas serve --threads values to measure (default 1,2)")
    parser.add_argument("--serve-args", default="",
                        help="more arguments for finmaas serve, e.g. '--access-log off' "
                             "(default: none, finmaas's defaults)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of each measurement (default 3)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds per measured wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=WRK_CONNECTIONS,
                        help=f"wrk connections for the peak rate (default {WRK_CONNECTIONS})")
    parser.add_argument("--data", default=str(REPO / "data" / "credit_data.csv"),
                        help="the credit data (default data/credit_data.csv)")
    parser.add_argument("--row", type=int, default=1,
                        help="the data row the request carries (default 1, the first)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (models, homes, logs) under bench/out/")
    opts = parser.parse_args()
    opts.serve_args = shlex.split(opts.serve_args)
    try:
        opts.threads = [int(t) for t in opts.threads.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--threads {opts.threads}: a comma-separated list of integers expected")
    if (opts.repeat < 1 or opts.duration < 1 or opts.connections < WRK_THREADS
            or not opts.threads or min(opts.threads) < 1):  # fmt: skip
        parser.error("need --repeat >= 1, --duration >= 1, --connections >= 1, --threads >= 1")

    signal.signal(signal.SIGTERM, on_sigterm)
    procs = Processes()
    bench = Benchmark(opts, procs)
    try:
        return bench.run()
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if bench.work:
            if opts.keep:
                print(f"kept the work files in {bench.work}")
            else:
                shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
