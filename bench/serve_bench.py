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

finmaas's latency is also measured at exactly half of its peak rate with fm_loadgen
(bench/loadgen.c, built beside finmaas as bench/fm_loadgen), an open-loop, constant-rate
generator in the manner of wrk2 (wrk 4.1 has no fixed-rate mode): requests are scheduled at
uniform intervals of 2 / peak seconds on 32 keep-alive connections, whatever the responses do,
and each request's latency runs from its scheduled time to the end of its response, so a stall
delays every request that falls due during it (no coordinated omission). Each of those runs is
followed by nginx at the same rate, as a control: the p99 that the load generator and the
shared CPUs leave of a server doing nothing.

Unless --no-security-cost, the first thread count is also served with --auth off (no API keys,
so no audit log and no rate limit), measured in the same rounds right after the server it is
compared with: the throughput cost of authentication and the durable audit log is the median of
the per-round ratios of the two.

The script prints a table, the ratios, one PASS/MISS line per goal (finmaas requests/s >= 0.5x
nginx's and >= 20x the Flask server's; p99 <= 2 ms at half of finmaas's peak rate; requests/s
with authentication and audit on >= 0.85x those with --auth off), and writes
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
DEFAULT_LOADGEN = REPO / "build" / "bench" / "fm_loadgen"
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
# The half-peak latency: fm_loadgen at peak / HALF_SHARE, after its own warm-up at that rate.
HALF_SHARE = 2
# A half-peak run whose achieved rate falls this far below its target did not hold the rate.
HALF_RATE_TOLERANCE = 0.02

# Goals the project set for itself (see bench/README.md).
GOAL_NGINX_RATIO = 0.5  # finmaas requests/s / nginx's, at least
GOAL_FLASK_RATIO = 20.0  # finmaas requests/s / the Flask server's, at least
GOAL_P99_MS = 2.0  # finmaas p99 at half its peak rate, at most
# finmaas requests/s with authentication and the durable audit log on (its defaults) / with
# --auth off, at least: their cost at most 15%.
GOAL_SECURITY_RATIO = 0.85

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
        self.half = None  # finmaas only: the half-peak runs
        self.token = None  # the API key its requests carry, if any
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


def run_load(procs, server, argv, env, seconds, name):
    """Runs a load generator (argv) against server and waits for it. Returns its exit status,
    stdout, stderr and wall time, and the CPU seconds per second used by the server (all its
    processes), by the generator, and by the rest of the machine meanwhile (other people's work
    on a shared machine)."""
    busy = machine_busy_seconds()
    server_cpu = tree_cpu_seconds(server.proc.pid)
    load_cpu = children_cpu_seconds()
    started = time.perf_counter()
    proc = procs.start(argv, env)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        raise Failed(f"{name} against {server.title} did not finish within {seconds + 60} s")
    procs.running.remove(proc)
    wall = time.perf_counter() - started
    run = {"exit": proc.returncode, "stdout": out.decode(errors="replace"),
           "stderr": err.decode(errors="replace"), "wall": wall,
           "server_cpu": (tree_cpu_seconds(server.proc.pid) - server_cpu) / wall,
           "load_cpu": (children_cpu_seconds() - load_cpu) / wall}  # fmt: skip
    run["other_cpu"] = max((machine_busy_seconds() - busy) / wall - run["server_cpu"]
                           - run["load_cpu"], 0.0)  # fmt: skip
    return run


def run_wrk(procs, server, body_file, token, seconds, connections):
    """One wrk run against server; its parsed figures plus the CPU the server and wrk used."""
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", HERE / "post.lua", server.infer_url]  # fmt: skip
    env = {"FM_BENCH_BODY": str(body_file), "FM_BENCH_TOKEN": token or ""}
    run = run_load(procs, server, argv, env, seconds, "wrk")
    text = run["stdout"] + run["stderr"]
    result = parse_wrk(text)
    result.update(connections=connections, wall=run["wall"], wrk_exit=run["exit"],
                  server_cpu=run["server_cpu"], wrk_cpu=run["load_cpu"],
                  other_cpu=run["other_cpu"], output=text)  # fmt: skip
    return result


def run_loadgen(procs, server, loadgen, body_file, token, rate, seconds, warmup, connections):
    """One fm_loadgen run against server at rate requests/s (uniform arrivals, open loop):
    the measured seconds after warmup seconds at the same rate. Returns the figures it printed
    (latencies from each request's scheduled time) plus the CPU the server and it used."""
    argv = [loadgen, "--url", server.infer_url, "--body", body_file,
            "--header", "Content-Type: application/json", "--rate", f"{rate:.3f}",
            "--connections", connections, "--duration", seconds, "--warmup", warmup]  # fmt: skip
    if token:
        argv += ["--header", f"Authorization: Bearer {token}"]
    run = run_load(procs, server, argv, None, warmup + seconds, "fm_loadgen")
    result = {"target_rps": rate, "rps": None, "connections": connections, "duration_s": seconds,
              "warmup_s": warmup, "wall": run["wall"], "loadgen_exit": run["exit"],
              "server_cpu": run["server_cpu"], "loadgen_cpu": run["load_cpu"],
              "other_cpu": run["other_cpu"], "stderr": run["stderr"]}  # fmt: skip
    try:
        out = json.loads(run["stdout"])
    except ValueError:
        result["output"] = run["stdout"]
        return result
    latency, service = out["latency_ms"], out["service_ms"]
    result.update(rps=out["achieved_rps"], requests=out["requests"], errors=out["errors"],
                  non2xx=out["non2xx"], unsent=out["unsent"], unanswered=out["unanswered"],
                  socket_errors=out["socket_errors"], p50_ms=latency["p50"],
                  p90_ms=latency["p90"], p99_ms=latency["p99"], p999_ms=latency["p999"],
                  max_ms=latency["max"], mean_ms=latency["mean"],
                  service_p50_ms=service["p50"], service_p99_ms=service["p99"],
                  send_delay_p99_ms=out["send_delay_ms"]["p99"],
                  lateness_p99_ms=out["generator_lateness_ms"]["p99"],
                  output=out)  # fmt: skip
    return result


def loadgen_problems(result):
    """What went wrong in one fm_loadgen run, as text (empty when nothing did)."""
    if result["loadgen_exit"] != 0 or result["rps"] is None:
        return [f"fm_loadgen exited with status {result['loadgen_exit']} or printed no figures: "
                f"{(result.get('output') or '') + result['stderr']!r:.1000}"]  # fmt: skip
    problems = []
    if result["non2xx"]:
        problems.append(f"{result['non2xx']} non-2xx responses of {result['requests']}")
    errors = {k: v for k, v in result["socket_errors"].items() if v}
    if errors:
        problems.append("socket errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    if result["unsent"] or result["unanswered"]:
        problems.append(f"{result['unsent']} requests never sent and {result['unanswered']} "
                        "never answered within fm_loadgen's timeout")  # fmt: skip
    return problems


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


def describe_half(result):
    """One line of an fm_loadgen run's figures."""
    if result["rps"] is None:
        return "no figures"
    held = ratio(result["rps"], result["target_rps"]) or 0
    return (f"{fmt_rate(result['rps'])} requests/s ({held:.1%} of the target), latency p50 "
            f"{fmt_ms(result['p50_ms'])}, p99 {fmt_ms(result['p99_ms'])}, p99.9 "
            f"{fmt_ms(result['p999_ms'])}, max {fmt_ms(result['max_ms'])}; service p99 "
            f"{fmt_ms(result['service_p99_ms'])}; CPU: server {fmt_cpu(result['server_cpu'])}, "
            f"fm_loadgen {fmt_cpu(result['loadgen_cpu'])}, other "
            f"{fmt_cpu(result['other_cpu'])}")  # fmt: skip


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(r)))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


# The figures whose medians summarise a server's wrk runs, and its fm_loadgen runs.
PEAK_KEYS = ("rps", "p50_ms", "p99_ms", "server_cpu", "wrk_cpu", "other_cpu")
HALF_KEYS = ("target_rps", "rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
             "service_p50_ms", "service_p99_ms", "send_delay_p99_ms", "lateness_p99_ms",
             "server_cpu", "loadgen_cpu", "other_cpu")  # fmt: skip


def summarise(runs, keys=PEAK_KEYS):
    """The median of each figure over the runs that produced figures, and how many did."""
    good = [r for r in runs if r["rps"] is not None]
    return dict({k: median([r.get(k) for r in good]) for k in keys}, runs=len(good))


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
        self.loadgen = str(Path(opts.loadgen).resolve())
        # FINMAAS_TOKEN: a key for every request; else, where finmaas has API keys, each
        # finmaas home gets a consumer key of its own and the peers carry the first one.
        self.token = os.environ.get("FINMAAS_TOKEN") or None
        self.finmaas_keys = False
        # (finmaas serve --threads N, the same with --auth off), for the cost of security
        self.security_pair = None
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

    def start_finmaas(self, model, threads, auth_off_token=None):
        """finmaas serve --threads THREADS as configured; with auth_off_token, the same with
        --auth off (no authentication, so no audit log and no rate limit) for the cost of
        security, its requests carrying auth_off_token so that they are the same bytes."""
        key, title, args = f"finmaas-t{threads}", f"finmaas serve --threads {threads}", []
        if auth_off_token is not None:
            key, title, args = key + "-noauth", title + " --auth off", ["--auth", "off"]
        server = Server(key, title, "finmaas")
        home = self.work / f"home-{key[len('finmaas-'):]}"
        out = run_command([self.finmaas, "models", "add", "--home", home, "--name", MODEL, model],
                          "finmaas models add")  # fmt: skip
        versions = re.findall(r"\d+", out)
        server.extra.update(home=str(home), threads=threads,
                            version=versions[-1] if versions else None)  # fmt: skip
        server.token = self.token or auth_off_token
        if self.finmaas_keys and not server.token:
            # finmaas serve requires an API key by default: a consumer key, as a client has.
            out = run_command([self.finmaas, "keys", "create", "--home", home, "--role",
                               "consumer", "--name", "bench"], "finmaas keys create")  # fmt: skip
            server.token = out.strip().splitlines()[-1].strip()
        server.log = self.work / f"{key}.log"
        start_server(self.procs, server,
                     lambda port: [self.finmaas, "serve", "--home", home, "--listen",
                                   f"{HOST}:{port}", "--threads", threads]
                     + self.opts.serve_args + args,
                     READY_PATH, auth_headers(server.token), ONE_THREAD)  # fmt: skip
        return server

    def start_flask(self, token):
        server = Server("flask", "Flask + gunicorn -w 2 + scikit-learn", "flask")
        server.token = token
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
                     READY_PATH, auth_headers(token), env)  # fmt: skip
        return server

    def start_nginx(self, response_body, token):
        server = Server("nginx", "nginx, 1 worker, return 200", "nginx")
        server.token = token
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

        start_server(self.procs, server, make_argv, "/", auth_headers(token))
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
                                              dict(auth_headers(server.token),
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

    def measure(self, server, seconds, connections, label="run"):
        result = run_wrk(self.procs, server, self.body_file, server.token, seconds, connections)
        for p in run_problems(result):
            self.problem(f"{server.title}, {label} (wrk -c{connections}): {p}")
        self.check(server, f"after {label}")
        return result

    def measure_rate(self, server, rate, label):
        """One fm_loadgen run at rate requests/s: --duration seconds after WARMUP_SECONDS."""
        opts = self.opts
        result = run_loadgen(self.procs, server, self.loadgen, self.body_file, server.token, rate,
                             opts.duration, WARMUP_SECONDS, opts.connections)  # fmt: skip
        for p in loadgen_problems(result):
            self.problem(f"{server.title}, {label} (fm_loadgen --rate {rate:.0f}): {p}")
        if result["rps"] is not None and result["rps"] < rate * (1 - HALF_RATE_TOLERANCE):
            print(f"  note: {server.title} did not keep up with {fmt_rate(rate)} requests/s in "
                  f"{label} (its responses came at {fmt_rate(result['rps'])}/s)")  # fmt: skip
        self.check(server, f"after {label}")
        return result

    def run(self):
        opts = self.opts
        if self.finmaas and not os.access(self.finmaas, os.X_OK):
            raise Failed(f"no finmaas executable at {self.finmaas} (build it, pass "
                         "--finmaas PATH, or --no-finmaas)")  # fmt: skip
        for tool in (WRK, NGINX, GUNICORN):
            if not os.access(tool, os.X_OK):
                raise Failed(f"{tool} is missing (Debian packages wrk, nginx-light, gunicorn)")
        if self.finmaas and not os.access(self.loadgen, os.X_OK):
            raise Failed(f"no fm_loadgen at {self.loadgen} (build the fm_loadgen target, e.g. "
                         "with bench/run-serve.sh, or pass --loadgen PATH)")  # fmt: skip
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
        if self.finmaas:
            self.finmaas_keys = subprocess.run([self.finmaas, "keys", "--help"],
                                               capture_output=True).returncode == 0
        auth = ""
        if self.token:
            auth = ", with Authorization: Bearer $FINMAAS_TOKEN"
        elif self.finmaas_keys:
            auth = (", with Authorization: Bearer <a consumer key of each finmaas home, made by "
                    "finmaas keys create>; nginx and Flask get the first one (the same bytes)")
        print(f"request: POST {INFER_PATH}, {len(self.body)} bytes of V2 JSON (row {opts.row} "
              f"of {Path(opts.data).name}, {len(self.row) - 1} tensors){auth}")
        if opts.serve_args:
            print(f"finmaas serve runs with {shlex.join(opts.serve_args)}")
        print(f"load: peak rate with wrk -t{WRK_THREADS} -c{opts.connections} -d{opts.duration}s "
              f"--latency, {opts.repeat} rounds over the servers (medians quoted)"
              + (f"; finmaas's latency at half its peak rate with {self.loadgen} (open loop, "
                 f"-c{opts.connections}, {opts.duration} s)" if self.finmaas else "")
              + f"; work files in {self.work}", flush=True)  # fmt: skip

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
            if self.finmaas_keys and not self.opts.no_security_cost:
                # The same server without authentication (nor audit log), for their cost.
                noauth = self.start_finmaas(model, opts.threads[0], server.token or "")
                body, probability, _ = self.check(noauth, "before the load")
                if body is None:
                    raise Failed(f"{noauth.title} does not answer the benchmark request "
                                 "correctly; nothing to measure")  # fmt: skip
                noauth.extra.update(probability=probability)
                self.security_pair = (server, noauth)
            print(f"finmaas: model version {server.extra['version']}, response "
                  f"{len(response_body)} bytes, P({POSITIVE}) = {server.extra['probability']}"
                  f" (finmaas predict on the same row: {expected})", flush=True)  # fmt: skip
        peer_token = self.token or (finmaas_servers[0].token if finmaas_servers else None)
        flask = self.start_flask(peer_token)
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
        nginx = self.start_nginx(response_body, peer_token)
        nginx.extra["body"] = response_body
        if self.check(nginx, "before the load")[0] is None:
            raise Failed(f"{nginx.title} does not answer with its configured body")
        print(f"nginx: answers every request with a {len(response_body)}-byte copy of "
              + ("finmaas's response" if self.finmaas else "the contract's example response")
              + "\n", flush=True)
        self.servers = [nginx, flask] + finmaas_servers
        if self.security_pair:
            # Right after the server it is compared with, so each pair of runs is adjacent.
            on, off = self.security_pair
            self.servers.insert(self.servers.index(on) + 1, off)

        # Peak rate: a warm-up, then --repeat rounds over the servers.
        for server in self.servers:
            server.warmup = self.measure(server, WARMUP_SECONDS, opts.connections, "warm-up")
        for r in range(opts.repeat):
            for server in self.servers:
                if not server.alive:
                    continue
                result = self.measure(server, opts.duration, opts.connections, f"round {r + 1}")
                server.runs.append(result)
                print(f"round {r + 1}/{opts.repeat}: {server.title:<40} "
                      f"{fmt_rate(result['rps']):>9} requests/s, p50 {fmt_ms(result['p50_ms'])},"
                      f" p99 {fmt_ms(result['p99_ms'])}; CPU: server "
                      f"{fmt_cpu(result['server_cpu'])}, wrk {fmt_cpu(result['wrk_cpu'])}, other "
                      f"{fmt_cpu(result['other_cpu'])}",
                      flush=True)  # fmt: skip

        # finmaas's latency at exactly half its peak rate, open loop; nginx at the same rate.
        for server in finmaas_servers:
            peak = summarise(server.runs)["rps"]
            if not server.alive or not peak:
                continue
            target = peak / HALF_SHARE
            print(f"\n{server.title}: latency at half its peak rate, {fmt_rate(target)} requests/s"
                  f" (fm_loadgen, open loop, uniform arrivals, -c{opts.connections}, "
                  f"{opts.duration} s after {WARMUP_SECONDS} s)", flush=True)  # fmt: skip
            half = {"target_rps": target, "peak_rps": peak, "connections": opts.connections,
                    "duration_s": opts.duration, "warmup_s": WARMUP_SECONDS,
                    "arrivals": "uniform", "runs": [], "nginx_runs": []}  # fmt: skip
            server.half = half
            for r in range(opts.repeat):
                if not server.alive:
                    break
                result = self.measure_rate(server, target, f"half-peak run {r + 1}")
                half["runs"].append(result)
                print(f"  run {r + 1}/{opts.repeat}: {describe_half(result)}", flush=True)
                # The control: nginx at the same rate. Its p99 is what the load generator and
                # the shared CPUs leave of a trivial server's.
                if not nginx.alive:
                    continue
                control = self.measure_rate(nginx, target, f"half-peak control run {r + 1}")
                half["nginx_runs"].append(control)
                print(f"  control {r + 1}/{opts.repeat}: {nginx.title}: {describe_half(control)}",
                      flush=True)  # fmt: skip

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
                # So is its audit log, where it keeps one (audit.log and its head).
                audit = [Path(server.extra["home"]) / n for n in ("audit.log", "audit.head")]
                if audit[0].exists():
                    size = sum(p.stat().st_size for p in audit if p.exists())
                    server.extra["audit_log_bytes"] = size
                    print(f"note: {server.title}'s audit log (audit.log in its home) holds "
                          f"{size / 2**20:.0f} MiB")  # fmt: skip
        return self.report(machine, nginx, flask, finmaas_servers)

    # ---- report -----------------------------------------------------------------------------

    def security_cost(self, stats):
        """finmaas with authentication and the audit log (its defaults) against --auth off, same
        thread count: the median over the rounds of the ratio of the two runs of a round, which
        ran one after the other (on a shared machine a pair shares its conditions, while the
        machine's speed drifts between rounds). None without the --auth off server."""
        if not self.security_pair:
            return None
        on, off = self.security_pair
        ratios = [a["rps"] / b["rps"] for a, b in zip(on.runs, off.runs)
                  if a.get("rps") and b.get("rps")]  # fmt: skip
        if not ratios:
            return None
        return {"ratio": statistics.median(ratios), "pairs": len(ratios), "ratios": ratios,
                "ratios_shown": ", ".join(f"{r:.2f}" for r in sorted(ratios)),
                "on": on.title, "off": off.title, "on_rps": stats[on.key]["rps"],
                "off_rps": stats[off.key]["rps"]}  # fmt: skip

    def report(self, machine, nginx, flask, finmaas_servers):
        opts = self.opts
        stats = {s.key: summarise(s.runs) for s in self.servers}
        half_stats = {s.key: summarise(s.half["runs"], HALF_KEYS) for s in finmaas_servers
                      if s.half}  # fmt: skip
        control_stats = {s.key: summarise(s.half["nginx_runs"], HALF_KEYS) for s in finmaas_servers
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
        print("peak rate (wrk -t1 -c%d, %d s, closed loop)" % (opts.connections, opts.duration))
        print_table(table)
        if half_stats:
            print(f"\nlatency at half the peak rate (fm_loadgen: open loop, uniform arrivals, "
                  f"-c{opts.connections}, {opts.duration} s after a {WARMUP_SECONDS} s warm-up; "
                  "latency from each request's scheduled time)")  # fmt: skip
            half_table = [["server (median)", "target/s", "achieved/s", "p50", "p90", "p99",
                           "p99.9", "max", "service p99", "server CPU", "fm_loadgen CPU",
                           "other CPU"]]  # fmt: skip

            def half_row(title, st):
                return [title, fmt_rate(st["target_rps"]), fmt_rate(st["rps"]),
                        fmt_ms(st["p50_ms"]), fmt_ms(st["p90_ms"]), fmt_ms(st["p99_ms"]),
                        fmt_ms(st["p999_ms"]), fmt_ms(st["max_ms"]), fmt_ms(st["service_p99_ms"]),
                        fmt_cpu(st["server_cpu"]), fmt_cpu(st["loadgen_cpu"]),
                        fmt_cpu(st["other_cpu"])]  # fmt: skip

            for s in finmaas_servers:
                if s.key not in half_stats or not half_stats[s.key]["runs"]:
                    continue
                half_table.append(half_row(s.title, half_stats[s.key]))
                if control_stats[s.key]["runs"]:
                    half_table.append(half_row("  control: nginx at the same rate",
                                               control_stats[s.key]))  # fmt: skip
            print_table(half_table)
        print()
        notes = (
            f"notes: all on loopback; the load generator (wrk, 1 thread, or fm_loadgen, 1 "
            f"thread) and the server under test share this machine's {machine['cpus']} CPUs, so "
            f"a server can use about {max(machine['cpus'] - 1, 1)} CPU while the generator takes "
            "the other. 'server CPU', 'wrk CPU' and 'fm_loadgen CPU' are CPU seconds per second "
            "during the runs (all processes of the server); 'other CPU' is what the rest of the "
            "machine used meanwhile (other work on a shared machine, which lowers every figure). "
            "wrk's p50 and p99 run from sending a request to its response, and a connection "
            "sends its next request only after that response (closed loop), so they leave out "
            "the requests a stall holds back. fm_loadgen's run from when each request was due "
            "(open loop), so they include waiting for a free connection; 'service p99' is its "
            "p99 from sending to the response, comparable to wrk's. "
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
                if s.key in half_stats and half_stats[s.key]["runs"]:
                    hs = half_stats[s.key]
                    line += (f"; at half its peak ({fmt_rate(hs['target_rps'])} requests/s, "
                             f"open loop) p99 is {fmt_ms(hs['p99_ms'])}")  # fmt: skip
                    ct = control_stats[s.key]
                    if ct["runs"]:
                        line += f" (nginx at the same rate: {fmt_ms(ct['p99_ms'])})"
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
        if best_half and not best_half["runs"]:
            best_half = None
        best_control = control_stats.get(best.key) if best_half else None
        security = self.security_cost(stats)
        noauth_vs_nginx = ratio(security["off_rps"], stats["nginx"]["rps"]) if security else None
        goal("finmaas requests/s vs nginx's", ratio(best_rps, stats["nginx"]["rps"]),
             GOAL_NGINX_RATIO, True,
             detail=f" ({security['off']}: {fmt_ratio(noauth_vs_nginx)})" if security else "",
             auth_off_ratio=noauth_vs_nginx)  # fmt: skip
        goal("finmaas requests/s vs the Flask server's", ratio(best_rps, stats["flask"]["rps"]),
             GOAL_FLASK_RATIO, True)  # fmt: skip
        if security:
            goal("finmaas requests/s with authentication and audit on vs --auth off",
                 security["ratio"], GOAL_SECURITY_RATIO, True,
                 detail=f" (cost {100 * (1 - security['ratio']):.0f}%; median of {security['pairs']} "
                 f"adjacent pairs of runs, ratios {security['ratios_shown']}; "
                 f"{fmt_rate(security['on_rps'])} against {fmt_rate(security['off_rps'])} "
                 "requests/s, medians)", **security)  # fmt: skip
        half_target = best_half["target_rps"] if best_half else None
        control_p99 = best_control["p99_ms"] if best_control and best_control["runs"] else None
        goal("finmaas p99 at half its peak rate (fm_loadgen, open loop)",
             best_half["p99_ms"] if best_half else None, GOAL_P99_MS, False, "ms",
             f", at {fmt_rate(half_target)} requests/s (half of {fmt_rate(best_rps)}, achieved "
             f"{fmt_rate(best_half['rps'])}); nginx at the same rate: {fmt_ms(control_p99)}"
             if best_half else "",
             target_rps=half_target, achieved_rps=best_half["rps"] if best_half else None,
             peak_rps=best_rps, nginx_p99_ms=control_p99)  # fmt: skip

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
                         "warmup_s": WARMUP_SECONDS,
                         "half_peak": {"generator": "fm_loadgen", "loadgen": self.loadgen,
                                       "rate": f"peak / {HALF_SHARE}", "arrivals": "uniform",
                                       "connections": opts.connections,
                                       "duration_s": opts.duration,
                                       "warmup_s": WARMUP_SECONDS},
                         "finmaas_threads": opts.threads,
                         "finmaas_serve_args": opts.serve_args,
                         "data": str(opts.data), "row": opts.row, "token": bool(self.token),
                         "finmaas_api_keys": self.finmaas_keys,
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
    parser.add_argument("--loadgen", default=str(DEFAULT_LOADGEN),
                        help="fm_loadgen, the open-loop load generator for the half-peak latency "
                             "(default: build/bench/fm_loadgen in the repository)")  # fmt: skip
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
                        help="seconds per measured wrk or fm_loadgen run (default 10)")
    parser.add_argument("--connections", type=int, default=WRK_CONNECTIONS,
                        help=f"connections, for wrk's peak rate and fm_loadgen's half-peak runs "
                             f"(default {WRK_CONNECTIONS})")  # fmt: skip
    parser.add_argument("--data", default=str(REPO / "data" / "credit_data.csv"),
                        help="the credit data (default data/credit_data.csv)")
    parser.add_argument("--row", type=int, default=1,
                        help="the data row the request carries (default 1, the first)")
    parser.add_argument("--no-security-cost", action="store_true",
                        help="do not measure finmaas serve --auth off beside the defaults (the "
                             "throughput cost of authentication and the audit log)")  # fmt: skip
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
