"""Shared helpers for the `finmaas serve` integration tests (tests/integration/test_serve*.py).

Starts the real server on an ephemeral loopback port, speaks HTTP to it with the standard
library only, trains small models with the real CLI and computes the answers the server must
give with `finmaas predict` (the reference the tests compare against). Python 3 standard
library only: the tests run as /usr/bin/python3 under CTest with FINMAAS set to the binary.

The server runs with its defaults: API keys required and a durable audit log. Before a server
starts, one key per role is created in its home with `finmaas keys create`, and every request
carries `Authorization: Bearer <token>` of the role a client of that endpoint would use
(role_for: consumers predict, modelers upload, load and move labels other than production,
validators move production, admins manage keys, auditors read the audit log and /metrics). A
test may send another key, or none, with the `key` argument.

Environment:
  FINMAAS        the finmaas executable (required)
  FM_TEST_SCALE  multiplies the request and cycle counts of the heavy checks (default 1.0; when
                 it is not set and FINMAAS is a sanitizer build, the load/unload cycles of the
                 memory check are 300 instead of 1,000)
  FM_TEST_KEEP   keep the temporary directory (models, registry, logs) for inspection
"""
import atexit
import csv
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FINMAAS = os.environ.get("FINMAAS", "")
CREDIT = os.path.join(ROOT, "data", "credit_data.csv")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
PROB_TOL = 1e-6  # absolute, for probabilities (server and CLI may sum a batch in another order)
READY_RE = re.compile(r"finmaas serve: ready on (https?)://(\S+):(\d+)")
ROLES = ("admin", "modeler", "validator", "consumer", "auditor")


def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = bool(FINMAAS) and _is_sanitized(FINMAAS)
SCALE = float(os.environ.get("FM_TEST_SCALE", "1.0"))


def scaled(n, minimum=1, sanitized=None):
    """n times FM_TEST_SCALE (at least minimum); when FM_TEST_SCALE is not set and FINMAAS is a
    sanitizer build, `sanitized` instead of n if given."""
    if SANITIZED and sanitized is not None and "FM_TEST_SCALE" not in os.environ:
        return sanitized
    return max(minimum, int(round(n * SCALE)))


# ---- Checks --------------------------------------------------------------------------------


class Checks:
    """One printed line per check; a non-zero exit status when any failed."""

    def __init__(self, title):
        self.title = title
        self.failures = 0
        self.count = 0
        self.lock = threading.Lock()
        self.started = time.monotonic()
        print("# %s (FINMAAS=%s, scale %.2f%s)" % (title, FINMAAS, SCALE,
                                                   ", sanitizer build" if SANITIZED else ""),
              flush=True)

    def check(self, cond, what, detail=""):
        with self.lock:
            self.count += 1
            if not cond:
                self.failures += 1
            line = ("ok   " if cond else "FAIL ") + what
            if detail and not cond:
                line += ": " + str(detail)
            print(line, flush=True)
        return bool(cond)

    def equal(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def section(self, name, fn, *args):
        """Runs one group of checks; an exception fails the group and the next ones still run."""
        print("# %s" % name, flush=True)
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - any error is a failed check, reported in full
            self.check(False, "%s: raised" % name, traceback.format_exc())

    def finish(self):
        took = time.monotonic() - self.started
        print("# %s: %d checks, %d failed, %.1f s" % (self.title, self.count, self.failures, took),
              flush=True)
        return 1 if self.failures else 0


def require_finmaas():
    if not FINMAAS or not os.access(FINMAAS, os.X_OK):
        print("FINMAAS must name the finmaas executable (got %r)" % FINMAAS, file=sys.stderr)
        sys.exit(2)


class Workdir:
    """A temporary directory removed at the end unless FM_TEST_KEEP is set or a check failed."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def close(self, failed):
        if os.environ.get("FM_TEST_KEEP") or failed:
            print("# files kept in %s" % self.path, flush=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def run_main(title, prefix, sections):
    """The whole main() of a test script: the checks titled `title`, in a new Workdir(prefix).
    sections(C, w) sets up and runs the sections; an exception that escapes it (a failed setup)
    is a failed check. Every server still running is killed before the summary; the directory is
    kept when a check failed. Returns the exit status."""
    require_finmaas()
    C = Checks(title)
    w = Workdir(prefix)
    try:
        sections(C, w)
    except Exception:  # noqa: BLE001 - a failed setup is a failed check
        C.check(False, "setup", traceback.format_exc())
    finally:
        _kill_started()
    code = C.finish()
    w.close(code != 0)
    return code


# ---- The CLI -------------------------------------------------------------------------------


def cli_env():
    env = os.environ.copy()
    # The program runs with its defaults (for serve: authentication on, a durable audit log),
    # whatever the caller's environment says; a test changes them with flags or env.
    for name in ("FINMAAS_AUTH", "FINMAAS_AUDIT", "FINMAAS_CONFIG", "FINMAAS_MASTER_KEY_FILE",
                 "FINMAAS_HOME"):
        env.pop(name, None)
    if SANITIZED:
        opts = env.get("ASAN_OPTIONS", "")
        if "detect_leaks" not in opts:
            env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_leaks=1"
    return env


def run_cli(*args, env=None):
    """Runs the CLI; returns (exit status, stdout, stderr) as text, whatever the status. env:
    variables to add (a value None removes one). Raises on a sanitizer report."""
    e = cli_env()
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.run([FINMAAS] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=300)
    err = p.stderr.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        if marker in err:
            raise RuntimeError("finmaas %s: sanitizer report: %s" % (args[0], err))
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


def finmaas(*args, check=True, env=None):
    """Runs the CLI; returns stdout as text. Raises with stderr when it fails."""
    e = cli_env()
    e.update(env or {})
    p = subprocess.run([FINMAAS] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=300)
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise RuntimeError("finmaas %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode,
                                                        err))
    for marker in SANITIZER_MARKERS:
        if marker in err:
            raise RuntimeError("finmaas %s: sanitizer report: %s" % (args[0], err))
    return p.stdout.decode("utf-8")


def train(data, target, out, *extra, seed=1):
    finmaas("train", "--data", data, "--target", target, "--out", out, "--model", "mlp",
            "--hidden", "8", "--epochs", "5", "--seed", seed, "--quiet", *extra)
    return out


def inspect(model):
    return json.loads(finmaas("inspect", model))


def predict(model, rows_csv):
    """`finmaas predict` on rows_csv: a list of dicts (p_<class>..., label | prediction)."""
    text = finmaas("predict", "--model", model, "--data", rows_csv)
    out = []
    for r in csv.DictReader(text.splitlines()):
        out.append({k: (v if k == "label" else float(v)) for k, v in r.items()})
    return out


class Context:
    """What a test script's setup prepares: its workdir w, credit rows and their CSV."""


def credit_context(w, nrows):
    """A Context with w, rows (the first nrows rows of credit_data.csv as dicts) and rows_csv
    (those rows as a CSV file in w)."""
    c = Context()
    c.w = w
    header, c.rows = credit_rows(nrows)
    c.rows_csv = write_csv(w.join("rows.csv"), header, [[r[h] for h in header] for r in c.rows])
    return c


def registry_add(home, name, model, env=None):
    return int(finmaas("models", "add", "--home", home, "--name", name, model, env=env).strip())


def registry_label(home, name, label, version):
    finmaas("models", "label", "--home", home, "--name", name, "--label", label, "--version",
            version)


def registry_list(home):
    return json.loads(finmaas("models", "list", "--home", home, "--json"))


# ---- Data ----------------------------------------------------------------------------------


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, [row for row in r]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def credit_rows(n=200):
    """n rows of credit_data.csv that include every kind of missing value (NA in numeric and in
    categorical columns), in file order. Returns (header, list of row dicts)."""
    header, rows = read_csv(CREDIT)
    with_na = [i for i, r in enumerate(rows) if "NA" in r]
    chosen = set()
    # Every row with a missing category, then some with missing numbers.
    for i in with_na:
        r = dict(zip(header, rows[i]))
        if r["Home"] == "NA" or r["Job"] == "NA" or r["Marital"] == "NA":
            chosen.add(i)
    for i in with_na:
        if len(chosen) >= 30:
            break
        chosen.add(i)
    i = 0
    while len(chosen) < n:
        chosen.add(i)
        i += 1
    return header, [dict(zip(header, rows[i])) for i in sorted(chosen)]


def flags_data(path, n=600, seed=5):
    """A synthetic binary problem with a 0/1 numeric column (for BOOL tensors): target yes/no."""
    rng = random.Random(seed)
    header = ["x", "flag", "grp", "y"]
    rows = []
    for _ in range(n):
        x = round(rng.gauss(0, 1), 4)
        flag = rng.randint(0, 1)
        grp = rng.choice("abc")
        z = 1.2 * x + 1.5 * flag + (0.8 if grp == "a" else 0) - 1.0 + rng.gauss(0, 0.7)
        rows.append([x, flag, grp, "yes" if z > 0 else "no"])
    return write_csv(path, header, rows)


def number(text):
    """A CSV cell as a JSON number (int when integral), None for NA."""
    if text == "NA" or text == "":
        return None
    v = float(text)
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def v2_inputs(columns, rows, integer=False, nested=False):
    """V2 input tensors for rows (dicts of CSV text), one per model input. columns: the model
    metadata's inputs (name, datatype FP64 | BYTES). integer: send integral numeric columns as
    INT64. nested: shape [N, 1] with data [[v], ...]."""
    tensors = []
    for c in columns:
        name = c["name"]
        if c["datatype"] == "BYTES":
            data = [None if r[name] == "NA" else r[name] for r in rows]
            dtype = "BYTES"
        else:
            data = [number(r[name]) for r in rows]
            dtype = "FP64"
            if integer and all(v is None or isinstance(v, int) for v in data):
                dtype = "INT64"
        shape = [len(rows)]
        if nested:
            data = [[v] for v in data]
            shape = [len(rows), 1]
        tensors.append({"name": name, "datatype": dtype, "shape": shape, "data": data})
    return tensors


def tf_instance(columns, row):
    out = {}
    for c in columns:
        v = row[c["name"]]
        out[c["name"]] = (None if v == "NA" else v) if c["datatype"] == "BYTES" else number(v)
    return out


def encode_row(prep, row):
    """The encoded feature vector of one row, computed from `finmaas inspect` preprocessing
    parameters: numeric (x, or the median when missing, - mean) / std; categorical one-hot (the
    most frequent category when missing, all zeros when unseen); 0/1 missing indicators."""
    width = sum(c["width"] for c in prep["columns"])
    x = [0.0] * width
    for c in prep["columns"]:
        at = c["offset"]
        text = row.get(c["name"], "NA")
        missing = text is None or text == "NA" or text == ""
        if c["type"] == "numeric":
            v = c["median"] if missing else float(text)
            x[at] = (v - c["mean"]) / c["std"]
            if c["missing_indicator"]:
                x[at + 1] = 1.0 if missing else 0.0
        else:
            cats = c["categories"]
            k = c["most_frequent"] if missing else (cats.index(text) if text in cats else -1)
            if k >= 0:
                x[at + k] = 1.0
            if c["missing_indicator"]:
                x[at + len(cats)] = 1.0 if missing else 0.0
    return x


# ---- API keys ------------------------------------------------------------------------------


def create_key(home, role, models=None, name=None):
    """A new key made with `finmaas keys create`; returns its token."""
    args = ["keys", "create", "--home", home, "--role", role]
    if models:
        args += ["--models", ",".join(models) if isinstance(models, (list, tuple)) else models]
    if name:
        args += ["--name", name]
    token = finmaas(*args).strip()
    if not re.match(r"^fmk_[A-Za-z0-9_-]{43}$", token):
        raise RuntimeError("finmaas keys create printed %r, not a token" % token)
    return token


_HOME_KEYS = {}


def home_keys(home):
    """One key per role in home ({role: token}), created on first use (then reused, also by
    other servers started on the same home)."""
    home = os.path.abspath(home)
    if home not in _HOME_KEYS:
        _HOME_KEYS[home] = {r: create_key(home, r, name="test-" + r) for r in ROLES}
    return _HOME_KEYS[home]


def role_for(method, path):
    """The role whose key a request to path is sent with by default: the least privileged role
    the route table allows for what the request does."""
    path = path.split("?", 1)[0]
    if re.match(r"^/api/models/[^/]+/labels/production/?$", path):
        return "validator"
    if path.startswith("/api/models/") and "/labels/" in path:
        return "modeler"
    if path.startswith("/v2/repository/models/"):
        return "modeler"
    if path.startswith("/api/keys"):
        return "admin"
    if path.startswith("/api/audit") or path.startswith("/metrics"):
        return "auditor"
    return "consumer"


def bearer(token):
    return {"Authorization": "Bearer " + token}


DEFAULT_KEY = object()  # the key of role_for(method, path)


def role_sets():
    """The role sets of the route table ({macro name: set of roles}), read from
    src/server/internal.h: FM_ROLES_* macros and FM_ROLE_BIT(FM_ROLE_*) terms."""
    with open(os.path.join(ROOT, "src", "server", "internal.h")) as f:
        text = f.read().replace("\\\n", " ")
    sets = {}
    for name, body in re.findall(r"#define (FM_ROLES_[A-Z_]+)\s+(.*)", text):
        body = body.split("/*")[0]
        sets[name] = {r.lower() for r in re.findall(r"FM_ROLE_BIT\(FM_ROLE_([A-Z]+)\)", body)}
    return sets


def route_table():
    """The routes of src/server/routes.c, in order: dicts with method, pattern, action, roles (a
    set of role names; empty for public routes), public (bool) and body (NONE, JSON, BINARY)."""
    with open(os.path.join(ROOT, "src", "server", "routes.c")) as f:
        text = f.read()
    sets = role_sets()
    routes = []
    entry = (r'\{\s*"(GET|POST|PUT|DELETE|PATCH|HEAD)",\s*"([^"]+)",\s*(\w+),\s*"([^"]+)",'
             r'\s*([^,]+?),\s*FM_BODY_(\w+)\s*\}')
    for m in re.finditer(entry, text):
        method, pattern, handler, action, roles_expr, body = m.groups()
        roles_expr = " ".join(roles_expr.split())
        if roles_expr in sets:
            roles = sets[roles_expr]
        else:
            roles = {r.lower() for r in re.findall(r"FM_ROLE_BIT\(FM_ROLE_([A-Z]+)\)", roles_expr)}
            if not roles:
                raise ValueError("cannot read the roles %r of %s %s" % (roles_expr, method,
                                                                       pattern))
        routes.append({"method": method, "pattern": pattern, "handler": handler,
                       "action": action, "roles": roles,
                       "public": roles_expr == "FM_ROLES_PUBLIC", "body": body})
    # an entry written in another shape must not be skipped silently
    starts = re.findall(r'\{\s*"[A-Z]+",\s*"/', text)
    if len(starts) != len(routes):
        raise ValueError("routes.c has %d entries, %d of them readable" % (len(starts),
                                                                          len(routes)))
    return routes


# ---- HTTP ----------------------------------------------------------------------------------


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


def _headers(msg):
    return {k.lower(): v for k, v in msg.items()}


def output(doc, name):
    """The V2 output tensor called name, or None."""
    for o in doc.get("outputs", []):
        if o.get("name") == name:
            return o
    return None


_STARTED = []


def _kill_started():
    for s in _STARTED:
        s.kill()


atexit.register(_kill_started)


class Server:
    """`finmaas serve` on 127.0.0.1:0 with its home, access log and stderr in a directory. A
    server still running when the test exits is killed."""

    def __init__(self, home, workdir, name="server", args=(), asan_options="", max_memory=0,
                 env=None):
        self.home = home
        self.dir = workdir
        self.name = name
        self.args = list(args)
        self.asan_options = asan_options
        self.max_memory = max_memory  # bytes of address space (RLIMIT_AS); 0: no limit
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.access_log = os.path.join(workdir, name + ".access.log")
        self.proc = None
        self.stop_time = None  # time.monotonic() when SIGTERM was sent
        self.host = None
        self.port = None
        self.seen = []  # (request id, method, path, status) of each answered request
        self.seen_lock = threading.Lock()
        self.record = True
        self.extra_env = dict(env or {})
        self.scheme = "http"
        self.tls_context = None  # an ssl.SSLContext for a server started with --tls-cert
        # Keys are made before the server starts (unless it runs with --auth off).
        self.auth = "--auth" not in self.args
        self.keys = home_keys(home) if self.auth else {}

    def start(self, timeout=90):
        cmd = [FINMAAS, "serve", "--home", self.home, "--listen", "127.0.0.1:0", "--access-log",
               self.access_log] + self.args
        self.err_file = open(self.stderr_path, "wb")
        limit = self.max_memory

        def preexec():
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err_file, env=self.env(), preexec_fn=preexec)
        _STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = READY_RE.search(self.stderr())
            if m:
                self.scheme, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %d before it was ready: %s" %
                                   (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        raise RuntimeError("server not ready after %d s: %s" % (timeout, self.stderr()))

    def env(self):
        env = cli_env()
        env.update(self.extra_env)
        if SANITIZED and self.asan_options:
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":" + self.asan_options
        return env

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        text = self.stderr()
        return [m for m in SANITIZER_MARKERS if m in text]

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self, timeout=30):
        """SIGTERM; returns (exit status, seconds to exit); None status if it did not exit."""
        if not self.proc or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = self.stop_time = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.err_file.close()
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def note(self, resp, method, path):
        if self.record:
            with self.seen_lock:
                # the path as the access log writes it: without the query string
                self.seen.append((resp.header("X-Request-Id"), method, path.split("?", 1)[0],
                                  resp.status))

    def connection(self, timeout=60):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.tls_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def token(self, method, path, key=DEFAULT_KEY):
        """The token a request sends: key when it is a string, none for None, else the token of
        role_for(method, path) (none when authentication is off)."""
        if key is DEFAULT_KEY:
            return self.keys.get(role_for(method, path))
        return key

    def auth_headers(self, method, path, key=DEFAULT_KEY):
        """{"Authorization": "Bearer ..."} for a request, or {} when it sends no key."""
        t = self.token(method, path, key)
        return bearer(t) if t else {}

    def auth_line(self, method, path, key=DEFAULT_KEY):
        """The Authorization header line (bytes, with CRLF) for a raw request, or b""."""
        t = self.token(method, path, key)
        return ("Authorization: Bearer %s\r\n" % t).encode() if t else b""

    def request(self, method, path, body=None, headers=None, timeout=60, key=DEFAULT_KEY):
        """One request on a new connection, with the key of role_for (or key; None: no key)
        unless headers already carry an Authorization header."""
        h = dict(headers or {})
        if not any(k.lower() == "authorization" for k in h):
            h.update(self.auth_headers(method, path, key))
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            resp = Response(r.status, _headers(r.headers), r.read())
        finally:
            conn.close()
        self.note(resp, method, path)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def raw(self, data, timeout=30):
        """Sends raw bytes on a new connection and reads one response (until it is complete or
        the server closes); returns a Response, status 0 when nothing parseable came back."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        chunks = []
        try:
            try:
                s.sendall(data)
            except OSError:
                pass  # refused early: the answer may still be readable
            while not response_complete(b"".join(chunks)):
                try:
                    b = s.recv(65536)
                except OSError:
                    break
                if not b:
                    break
                chunks.append(b)
        finally:
            s.close()
        return parse_raw_response(b"".join(chunks))

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise RuntimeError("GET /metrics: %r" % r)
        return parse_prometheus(r.body.decode())


def stop_checked(C, s, within=None):
    """SIGTERM to server s, then the checks every test makes of a server it stops: exit status 0
    (within `within` seconds when given) and no sanitizer report in its stderr. Returns the
    seconds it took to exit."""
    rc, took = s.stop()
    C.check(rc == 0 and (within is None or took < within),
            "%s: exit status 0 on SIGTERM (%.2f s)" % (s.name, took), rc)
    C.check(not s.sanitizer_report(), "%s: no sanitizer report" % s.name, s.stderr()[-3000:])
    return took


def response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(m) and len(body) >= int(m.group(1))


def parse_raw_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines and lines[0] else None
    if not m:
        return Response(0, {}, data)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(body)))
    return Response(int(m.group(1)), headers, body[:n])


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """Prometheus text format -> list of (name, {labels}, value). Raises on a malformed line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("#") and not re.match(r"^# (HELP|TYPE) \S+ .+$", line):
                raise ValueError("bad comment line %r" % line)
            continue
        m = PROM_LINE.match(line)
        if not m:
            raise ValueError("bad metrics line %r" % line)
        labels = dict(PROM_LABEL.findall(m.group(3) or ""))
        value = float(m.group(4))
        out.append((m.group(1), labels, value))
    return out


def metric(samples, name, **labels):
    """The value of one series, or None."""
    for n, l, v in samples:
        if n == name and all(l.get(k) == str(val) for k, val in labels.items()):
            return v
    return None


class Client:
    """A keep-alive connection for one thread; reconnects after the server closes it. Requests
    carry the key of role_for(path), or of role when given."""

    def __init__(self, server, timeout=60, role=None):
        self.server = server
        self.timeout = timeout
        self.role = role
        self.conn = server.connection(timeout)

    def post(self, path, body, headers=None):
        h = {"Content-Type": "application/json"}
        key = self.server.keys.get(self.role) if self.role else DEFAULT_KEY
        h.update(self.server.auth_headers("POST", path, key))
        if headers:
            h.update(headers)
        try:
            self.conn.request("POST", path, body=body, headers=h)
            r = self.conn.getresponse()
            resp = Response(r.status, _headers(r.headers), r.read())
        except Exception:
            self.conn.close()
            self.conn = self.server.connection(self.timeout)
            raise
        if r.will_close:
            self.conn.close()
        self.server.note(resp, "POST", path)
        return resp

    def close(self):
        self.conn.close()


# ---- Expected answers ----------------------------------------------------------------------


def close_to(a, b, tol=PROB_TOL):
    return a is not None and b is not None and abs(a - b) <= tol


def check_v2_binary(doc, expected, positive):
    """Compares a V2 answer for len(expected) rows of a binary model with `finmaas predict` rows.
    Returns None when it matches, else a description of the first difference."""
    p = output(doc, "probability")
    lab = output(doc, "label")
    n = len(expected)
    if not p or not lab:
        return "outputs missing: %r" % doc
    if p.get("datatype") != "FP32" or p.get("shape") != [n]:
        return "probability tensor %r" % {k: p.get(k) for k in ("datatype", "shape")}
    if lab.get("datatype") != "BYTES" or lab.get("shape") != [n]:
        return "label tensor %r" % {k: lab.get(k) for k in ("datatype", "shape")}
    for i, e in enumerate(expected):
        if not close_to(p["data"][i], e["p_" + positive]):
            return "row %d: probability %r, predict says %r" % (i, p["data"][i], e["p_" + positive])
        if lab["data"][i] != e["label"]:
            return "row %d: label %r, predict says %r" % (i, lab["data"][i], e["label"])
    return None


def single_row_bodies(columns, rows, integer_every=2):
    """V2 request bodies (bytes), one per row; every integer_every-th row uses INT64 tensors."""
    out = []
    for i, r in enumerate(rows):
        body = {"inputs": v2_inputs(columns, [r], integer=(i % integer_every == 1))}
        out.append(json.dumps(body).encode())
    return out


def run_threads(n, fn):
    """Runs fn(index) on n threads; returns the exceptions raised (one per failed thread)."""
    errors = []
    lock = threading.Lock()

    def wrap(k):
        try:
            fn(k)
        except Exception:  # noqa: BLE001 - reported by the caller
            with lock:
                errors.append(traceback.format_exc())

    threads = [threading.Thread(target=wrap, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def wait_until(fn, timeout, interval=0.05):
    """Polls fn until it returns a true value or timeout passes; returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if v or time.monotonic() - t0 > timeout:
            return v, time.monotonic() - t0
        time.sleep(interval)
