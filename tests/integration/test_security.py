"""`finmaas serve` security, end to end: who may call what, TLS, encryption at rest, the audit
log, personal data, rate limits and abuse limits.

  - Authorization: every route of src/server/routes.c (read from the C source, so a route added
    without a test here fails) x every role x {the role's key, a key scoped to another model, a
    revoked key} and x {no key, malformed keys, an unknown key}: 401 for missing, malformed,
    unknown and revoked keys; 403 for a role the route does not allow or a model outside the
    key's scope; otherwise the route's success status. The roles of each route are also checked
    against the policy written here, so a change of the table is a reviewed change of this test.
    Health probes need no key. Every request that passed authentication made exactly one audit
    entry; the 401s none.
  - Maker-checker on labels: modelers upload and move labels other than production, validators
    move production and nothing else.
  - Model names with "..", "/" (%2F), NUL (%00), or longer than 64 characters: 400 or 404, never
    5xx, and no file appears outside the home.
  - TLS (certificates made here with openssl, else certtool): curl over TLS 1.2 and 1.3 works,
    TLS 1.1 and 1.0 are refused (shown with gnutls-cli offering only that version, against a
    TLS 1.2 control); with --tls-client-ca only a client certificate signed by that CA is served.
  - Encryption at rest: with FINMAAS_MASTER_KEY_FILE the stored model starts with "FMENC1" and
    holds none of the model's bytes, and is served; another master key or a tampered file is
    refused with an error naming the model (which is then not served); a key file of mode 0644
    stops the server at start (exit 2, one line).
  - Audit: a known sequence of requests makes exactly its entries (request ids and statuses
    checked); `finmaas audit verify` passes after concurrent load; editing a field, deleting a
    middle or the last line, inserting a forged line and swapping two lines of a copy of
    audit.log each make verify exit 1 naming the right seq; GET /api/audit filters by model,
    since and until, for auditors only; command-line actions are audited.
  - Personal data: a model trained with --pii on an e-mail and a card number column; requests
    carrying e-mail addresses and Luhn-valid card numbers in model inputs, in numeric fields, in
    unknown fields, in bad values, in the request id and in the URL; then every output channel
    (response bodies, the access log, the audit export, the server's stderr, `finmaas inspect`
    and `finmaas train` output) is scanned: none appears in clear.
  - Rate limit (--rate-limit 20 --rate-burst 20): a burst of 40 gets 429 with Retry-After after
    about 20; another key is unaffected; after Retry-After the key works again.
  - Abuse limits: --max-connections 8 serves 8 connections while 12 more wait unserved;
    --timeout 2 disconnects an idle connection and one that trickles its headers byte by byte;
    a 64 KiB header block is refused (431, 413 or closed), never a 5xx, and the server lives on.
  - Authentication off: refused off loopback; on loopback predictions need no key, but the key
    and audit endpoints refuse (no key management without authentication).

Every server is checked for a clean exit and for sanitizer reports in its stderr.
Run: FINMAAS=build/finmaas /usr/bin/python3 tests/integration/test_security.py
"""
import base64
import json
import os
import random
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmserve as fm  # noqa: E402

JSON = {"Content-Type": "application/json"}
OCTET = {"Content-Type": "application/octet-stream"}

# The policy the route table must implement: action -> roles allowed (empty: public).
ANY = {"admin", "modeler", "validator", "consumer", "auditor"}
PREDICT = {"consumer", "modeler", "validator"}
POLICY = {
    "v2.infer": PREDICT,
    "v2.explain": PREDICT,
    "tf.predict": PREDICT,
    "health.live": set(),
    "health.ready": set(),
    "server.metadata": ANY,
    "model.metadata": ANY,
    "model.ready": ANY,
    "model.status": ANY,
    "repository.index": ANY,
    "models.list": ANY,
    "model.load": {"modeler", "admin"},
    "model.unload": {"modeler", "admin"},
    "model.upload": {"modeler"},
    "label.set": {"modeler", "validator"},
    "label.remove": {"modeler", "validator"},
    "keys.list": {"admin"},
    "keys.create": {"admin"},
    "keys.revoke": {"admin"},
    "audit.read": {"auditor"},
    "metrics.read": {"admin", "auditor", "modeler", "validator"},
    "dataset.upload": {"modeler", "admin"},
    "dataset.delete": {"modeler", "admin"},
    "dataset.list": {"admin", "modeler", "validator", "auditor"},
    "dataset.read": {"admin", "modeler", "validator", "auditor"},
    "job.create": {"modeler"},
    "job.cancel": {"modeler"},
    "job.list": {"admin", "modeler", "validator", "auditor"},
    "job.read": {"admin", "modeler", "validator", "auditor"},
    "job.events": {"admin", "modeler", "validator", "auditor"},
    "model.fairness": {"admin", "modeler", "validator", "auditor"},
    "model.report": {"admin", "modeler", "validator", "auditor"},
    "loan.decide": PREDICT,
    "risk.portfolio": PREDICT,
    "invest.analyze": PREDICT,
}


def setup(w):
    c = fm.credit_context(w, 60)
    c.model = fm.train(fm.CREDIT, "Status", w.join("credit.fmm"), "--positive", "bad")
    c.model_bytes = open(c.model, "rb").read()
    c.pred = fm.predict(c.model, c.rows_csv)
    c.columns = [{"name": f["name"], "datatype": "FP64" if f["type"] == "numeric" else "BYTES"}
                 for f in fm.inspect(c.model)["features"]]
    c.v2_body = {"inputs": fm.v2_inputs(c.columns, c.rows[:2])}
    c.tf_body = {"instances": [fm.tf_instance(c.columns, r) for r in c.rows[:2]]}
    c.home = w.join("home")
    for name in ("credit", "other", "scratch", "mc"):
        assert fm.registry_add(c.home, name, c.model) == 1
    fm.registry_label(c.home, "credit", "staging", 1)
    fm.registry_label(c.home, "scratch", "staging", 1)
    c.keys = fm.home_keys(c.home)
    c.scoped = {r: fm.create_key(c.home, r, models="other", name="scoped-" + r) for r in fm.ROLES}
    c.revoked = {r: fm.create_key(c.home, r, name="revoked-" + r) for r in fm.ROLES}
    for r in fm.ROLES:
        fm.finmaas("keys", "revoke", "--home", c.home, "revoked-" + r)
    c.key_ids = {k["name"]: k["id"] for k in
                 json.loads(fm.finmaas("keys", "list", "--home", c.home, "--json"))}
    c.victims = 0
    c.victim = None
    c.cli_actions = 0  # audited command-line actions (each `keys create` of a victim key)
    return c


def server(C, c, home, name, args=(), env=None, tls_context=None):
    s = fm.Server(home, c.w.path, name=name, args=list(args), env=env)
    s.tls_context = tls_context
    return s.start()


stop = fm.stop_checked


def error_body(r):
    try:
        doc = r.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"] != ""


def audit_export(home):
    out = fm.finmaas("audit", "export", "--home", home)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def t_audit_cli(C, c):
    """Commands that change a home are audited like the server's actions, and refused when the
    home's audit log cannot be written."""
    home = c.w.join("home-cli-audit")
    v = fm.registry_add(home, "credit", c.model)
    token = fm.create_key(home, "consumer", models=["credit"], name="cli-made")
    fm.finmaas("models", "label", "--home", home, "--name", "credit", "--label", "staging",
               "--version", v)
    fm.finmaas("models", "label", "--home", home, "--name", "credit", "--label", "staging",
               "--remove")
    fm.finmaas("keys", "revoke", "--home", home, "cli-made")
    rc, _, err = fm.run_cli("keys", "revoke", "--home", home, "no-such-key")
    C.check(rc != 0, "revoking an unknown key fails", (rc, err))
    rc, _, err = fm.run_cli("keys", "revoke", "--home", home, token)
    C.check(rc != 0 and token not in err, "revoking by a pasted token fails and does not echo it",
            (rc, err))
    entries = audit_export(home)
    got = [(e["action"], e["model"], e["version"], e["status"]) for e in entries]
    want = [("model.upload", "credit", v, 0), ("keys.create", None, 0, 0),
            ("label.set", "credit", v, 0), ("label.remove", "credit", 0, 0),
            ("keys.revoke", None, 0, 0)]
    C.check(got[:5] == want, "models add, keys create, label set and remove, keys revoke are "
            "audited in order with their model, version and status", got)
    C.check(len(got) == 7 and all(e[3] != 0 for e in got[5:]) and
            all(e["action"] == "keys.revoke" for e in entries[5:]),
            "the two failed revocations are audited with a non-zero status", got[5:])
    C.check(all(e["key_id"] == "cli" and e["role"] == "operator" and
                "os_user=" in (e["detail"] or "") for e in entries),
            "each with key id cli, role operator and the operating-system user",
            [(e["key_id"], e["role"], e["detail"]) for e in entries])
    created = entries[1]["detail"] or ""
    C.check(re.search(r"key=k_[0-9a-f]{12} role=consumer scope=credit", created) is not None,
            "keys.create records the key's id, role and scope", created)
    C.check(token not in json.dumps(entries), "no entry holds the token")
    C.check("(not a key id or name)" in (entries[6]["detail"] or ""),
            "a pasted token is recorded as not a key id or name", entries[6]["detail"])
    rc, out, err = fm.run_cli("audit", "verify", "--home", home)
    C.check(rc == 0, "audit verify: the chain with the command-line entries is intact", (out, err))
    # a home whose audit log cannot be opened refuses the change instead of making it untraced
    keys_before = fm.finmaas("keys", "list", "--home", home, "--json")
    key_file = os.path.join(home, "audit.key")
    os.chmod(key_file, 0o644)
    try:
        rc, out, err = fm.run_cli("keys", "create", "--home", home, "--role", "admin")
        C.check(rc != 0 and not out.strip() and "audit" in err and len(err.strip().splitlines())
                == 1, "keys create with an unusable audit log: refused, one line naming the "
                "audit log, no token printed", (rc, out, err))
        rc, out, err = fm.run_cli("models", "add", "--home", home, "--name", "other", c.model)
        C.check(rc != 0 and "audit" in err, "models add with an unusable audit log: refused",
                (rc, out, err))
    finally:
        os.chmod(key_file, 0o600)
    C.equal(fm.finmaas("keys", "list", "--home", home, "--json"), keys_before,
            "  and no key was created")
    C.check(all(e["name"] != "other" for e in fm.registry_list(home)),
            "  and no model was added")


# ---- authorization table -------------------------------------------------------------------


def route_spec(c):
    """How to make a valid request to each route: the parameters of its path, its body, and the
    status it answers when allowed (per role where the handler refines the table)."""
    v2 = json.dumps(c.v2_body).encode()
    tf = json.dumps(c.tf_body).encode()
    return {
        ("POST", "/v2/models/{name}/infer"): dict(name="credit", body=v2, ok=200),
        ("POST", "/v2/models/{name}/versions/{version}/infer"):
            dict(name="credit", version="1", body=v2, ok=200),
        ("POST", "/v2/models/{name}/explain"): dict(name="credit", body=v2, ok=200),
        ("POST", "/v2/models/{name}/versions/{version}/explain"):
            dict(name="credit", version="1", body=v2, ok=200),
        ("GET", "/v2/health/live"): dict(ok=200),
        ("GET", "/v2/health/ready"): dict(ok=200),
        ("GET", "/v2"): dict(ok=200),
        ("GET", "/v2/models/{name}"): dict(name="credit", ok=200),
        ("GET", "/v2/models/{name}/versions/{version}"): dict(name="credit", version="1", ok=200),
        ("GET", "/v2/models/{name}/ready"): dict(name="credit", ok=200),
        ("GET", "/v2/models/{name}/versions/{version}/ready"):
            dict(name="credit", version="1", ok=200),
        ("GET", "/v2/repository/index"): dict(ok=200),
        ("POST", "/v2/repository/index"): dict(ok=200),
        ("POST", "/v2/repository/models/{name}/load"): dict(name="scratch", ok=200),
        ("POST", "/v2/repository/models/{name}/unload"): dict(name="scratch", ok=200),
        ("POST", "/v2/repository/models/{name}/versions"):
            dict(name="scratch", body=c.model_bytes, type=OCTET, ok=201),
        ("POST", "/v1/models/{name}:predict"): dict(name="credit", body=tf, ok=200),
        ("POST", "/v1/models/{name}/versions/{version}:predict"):
            dict(name="credit", version="1", body=tf, ok=200),
        ("POST", "/v1/models/{name}/labels/{label}:predict"):
            dict(name="credit", label="staging", body=tf, ok=200),
        ("GET", "/v1/models/{name}"): dict(name="credit", ok=200),
        ("GET", "/v1/models/{name}/versions/{version}"): dict(name="credit", version="1", ok=200),
        ("GET", "/api/models"): dict(ok=200),
        # only a modeler moves a label other than production (the handler's rule)
        ("PUT", "/api/models/{name}/labels/{label}"):
            dict(name="scratch", label="staging", body=b'{"version": 1}',
                 ok={"modeler": 200, "validator": 403}),
        ("DELETE", "/api/models/{name}/labels/{label}"):
            dict(name="scratch", label="staging", ok={"modeler": 200, "validator": 403}),
        ("GET", "/api/keys"): dict(ok=200),
        ("POST", "/api/keys"): dict(body=b'{"role": "consumer"}', ok=201),
        ("DELETE", "/api/keys/{key}"): dict(key="victim", ok=200),
        ("GET", "/api/audit"): dict(ok=200),
        ("GET", "/metrics"): dict(ok=200),
        # route_path fills only name, version, label and key: the upload goes without its
        # ?name= (refused after authorization: 400) and job ids stay "{id}" (no such job: 404);
        # test_jobs.py makes the successful requests
        ("POST", "/api/datasets"): dict(body=b"a,b\n1,2\n", type={"Content-Type": "text/csv"},
                                        ok=400),
        ("GET", "/api/datasets"): dict(ok=200),
        ("GET", "/api/datasets/{name}"): dict(name="no-such-dataset", ok=404),
        ("DELETE", "/api/datasets/{name}"): dict(name="no-such-dataset", ok=404),
        ("POST", "/api/jobs"):
            dict(body=b'{"dataset": "no-such-dataset", "name": "other", "target": "Status"}',
                 ok=404),
        ("GET", "/api/jobs"): dict(ok=200),
        ("GET", "/api/jobs/{id}"): dict(ok=404),
        ("GET", "/api/jobs/{id}/events"): dict(ok=404),
        ("DELETE", "/api/jobs/{id}"): dict(ok=404),
        # no such dataset (404), and the report without its ?dataset= (400):
        # test_explain_serve.py makes the successful requests
        ("POST", "/api/models/{name}/fairness"):
            dict(name="credit", body=b'{"dataset": "no-such-dataset", "protected": ["Age"]}',
                 ok=404),
        ("POST", "/api/models/{name}/versions/{version}/fairness"):
            dict(name="credit", version="1",
                 body=b'{"dataset": "no-such-dataset", "protected": ["Age"]}', ok=404),
        ("GET", "/api/models/{name}/versions/{version}/report"):
            dict(name="credit", version="1", ok=400),
        # the served model has no scorecard (422): test_loan_api.py makes the decisions
        ("POST", "/api/apps/loan/{name}/decide"):
            dict(name="credit", body=b'{"applicant": {"Age": 30}}', ok=422),
        ("POST", "/api/apps/loan/{name}/versions/{version}/decide"):
            dict(name="credit", version="1", body=b'{"applicant": {"Age": 30}}', ok=422),
        ("POST", "/api/apps/risk/portfolio"):
            dict(body=b'{"exposures": [{"id": "a", "pd": 0.01, "lgd": 0.45, "ead": 100}], '
                      b'"scenarios": 0}', ok=200),
        ("POST", "/api/apps/invest/analyze"):
            dict(body=b'{"series": {"A": {"close": [1, 2, 3, 4]}}}', ok=200),
    }


def route_path(c, pattern, spec):
    path = pattern
    for param in ("name", "version", "label", "key"):
        if "{%s}" % param in path:
            value = spec[param]
            if param == "key":
                # a live key to revoke: a new one once an allowed revocation took the last
                if not c.victim:
                    c.victims += 1
                    c.victim = "victim-%d" % c.victims
                    fm.create_key(c.home, "consumer", name=c.victim)
                    c.cli_actions += 1
                value = c.victim
            path = path.replace("{%s}" % param, value)
    return path


def t_authorization(C, c, s):
    routes = fm.route_table()
    spec = route_spec(c)
    C.check(len(routes) >= 27, "routes.c has %d routes" % len(routes))
    untested = ["%s %s" % (r["method"], r["pattern"]) for r in routes
                if (r["method"], r["pattern"]) not in spec]
    C.check(not untested, "every route of routes.c has an authorization test here", untested)
    stale = [k for k in spec if k not in {(r["method"], r["pattern"]) for r in routes}]
    C.check(not stale, "every route tested here is in routes.c", stale)
    policy = [("%s %s" % (r["method"], r["pattern"]), sorted(r["roles"]),
               sorted(POLICY.get(r["action"], {"?"}))) for r in routes
              if r["roles"] != POLICY.get(r["action"])]
    C.check(not policy, "the roles of every route are those of the policy (action -> roles)",
            policy)
    C.check(all(r["public"] == r["action"].startswith("health.") for r in routes),
            "only the health probes are public",
            [r["pattern"] for r in routes if r["public"]])
    unknown = "fmk_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    anonymous = [
        ("no key", {}),
        ("Bearer with a malformed token", {"Authorization": "Bearer not-a-key"}),
        ("Bearer with a truncated token", {"Authorization": "Bearer " + c.keys["admin"][:-1]}),
        ("Bearer with a token and trailing text",
         {"Authorization": "Bearer " + c.keys["admin"] + "x"}),
        ("Basic credentials", {"Authorization": "Basic YWRtaW46YWRtaW4="}),
        ("the token without Bearer", {"Authorization": c.keys["admin"]}),
        ("an unknown token", {"Authorization": "Bearer " + unknown}),
    ]
    before = len(audit_export(c.home))
    cli_before = c.cli_actions
    audited, bad, done = 0, [], 0
    for r in routes:
        sp = spec.get((r["method"], r["pattern"]))
        if not sp:
            continue
        has_model = "{name}" in r["pattern"]
        cases = [(what, h, None) for what, h in anonymous]
        for role in fm.ROLES:
            cases.append(("%s key" % role, fm.bearer(c.keys[role]), ("normal", role)))
            cases.append(("%s key scoped to another model" % role, fm.bearer(c.scoped[role]),
                          ("scoped", role)))
            cases.append(("revoked %s key" % role, fm.bearer(c.revoked[role]), None))
        for what, auth, kind in cases:
            if r["public"]:
                want = sp["ok"]
            elif kind is None:
                want = 401
            else:
                variant, role = kind
                if role not in r["roles"] or (variant == "scoped" and has_model):
                    want = 403
                else:
                    ok = sp["ok"]
                    want = ok.get(role, 403) if isinstance(ok, dict) else ok
                audited += 1
            path = route_path(c, r["pattern"], sp)
            h = dict(sp.get("type", JSON if sp.get("body") else {}))
            h.update(auth)
            resp = s.request(r["method"], path, sp.get("body"), headers=h, key=None)
            if r["action"] == "keys.revoke" and resp.status == 200:
                c.victim = None
            done += 1
            good = resp.status == want and (want < 400 or error_body(resp))
            if good and want == 401:
                good = resp.header("WWW-Authenticate") == "Bearer"
            if not good:
                bad.append("%s %s with %s: got %d %r, want %d" % (
                    r["method"], path, what, resp.status, resp.body[:120], want))
    C.check(not bad, "%d requests (%d routes x (5 roles x {key, scoped key, revoked key} + "
            "%d bad or missing keys)): each answered 401, 403 or the route's own status as the "
            "table says" % (done, len(routes), len(anonymous)), "%d wrong: %s" % (len(bad),
                                                                                 bad[:8]))
    after = len(audit_export(c.home))
    C.equal(after - before - (c.cli_actions - cli_before), audited,
            "every request that passed authentication made one audit entry (%d), the 401s and "
            "the public probes none (besides the %d keys made with finmaas keys create)"
            % (audited, c.cli_actions - cli_before))


def t_scope_listing(C, c, s):
    """A scoped key sees only its models in listings."""
    for path in ("/api/models", "/v2/repository/index"):
        r = s.get(path, key=c.scoped["consumer"])
        names = {e.get("name") for e in r.json()} if r.status == 200 else None
        C.check(names == {"other"}, "GET %s with a key scoped to 'other' lists only it" % path,
                (r.status, names))


# ---- maker-checker ---------------------------------------------------------------------------


def t_maker_checker(C, c, s):
    K = c.keys
    r = s.post("/v2/repository/models/mc/versions", c.model_bytes, headers=OCTET,
               key=K["validator"])
    C.check(r.status == 403 and error_body(r), "a validator cannot upload a model (403)", r)
    r = s.post("/v2/repository/models/mc/versions", c.model_bytes, headers=OCTET, key=K["modeler"])
    version = r.json().get("version") if r.status == 201 else None
    C.check(r.status == 201 and version == 2, "a modeler uploads mc version 2 (201)", r)
    listed = {e["version"]: e for e in s.get("/api/models").json() if e["name"] == "mc"}
    C.equal(listed.get(2, {}).get("uploaded_by"), c.key_ids["test-modeler"],
            "the registry records the uploading key's id (uploaded_by)")
    path = "/api/models/mc/labels/production"
    r = s.request("PUT", path, {"version": 2}, key=K["modeler"])
    C.check(r.status == 403 and "production" in r.json().get("error", ""),
            "the modeler may not move production onto it (403, naming the label)", r)
    r = s.request("PUT", "/api/models/mc/labels/staging", {"version": 2}, key=K["validator"])
    C.check(r.status == 403 and error_body(r), "a validator may not move staging (403)", r)
    r = s.request("PUT", "/api/models/mc/labels/staging", {"version": 2}, key=K["modeler"])
    C.check(r.status == 200, "the modeler moves staging (200)", r)
    r = s.request("PUT", path, {"version": 2}, key=K["admin"])
    C.check(r.status == 403, "an admin may not move production (403)", r)
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    r = s.post("/v2/models/mc/infer", body)
    C.equal(r.json().get("model_version") if r.status == 200 else r.status, "2",
            "before the promotion the newest version (2) answers")
    r = s.request("PUT", path, {"version": 1}, key=K["validator"])
    C.check(r.status == 200, "a validator promotes version 1 (uploaded by another) (200)", r)
    r = s.post("/v2/models/mc/infer", body)
    C.equal(r.json().get("model_version") if r.status == 200 else r.status, "1",
            "the promoted version answers by default")
    r = s.request("PUT", path, {"version": 2}, key=K["validator"])
    C.check(r.status == 200, "a validator promotes the modeler's version 2 (200)", r)
    r = s.request("DELETE", path, key=K["modeler"])
    C.check(r.status == 403, "a modeler may not remove production (403)", r)
    r = s.request("DELETE", path, key=K["validator"])
    C.check(r.status == 200, "a validator removes production (200)", r)
    labels = {e["version"]: e["labels"] for e in fm.registry_list(c.home) if e["name"] == "mc"}
    C.equal(labels, {1: [], 2: ["staging"]}, "the registry holds only the allowed label moves")


# ---- model names -----------------------------------------------------------------------------


def tree(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def t_model_names(C, c, s):
    names = ["..", "%2e%2e", "..%2F..%2Fescaped", "%2Fetc%2Fpasswd", "a%2Fb", "cre%00dit",
             "credit%00junk", "credit%00", "%00", "a" * 65, "b" * 300, ".hidden", "-dash",
             "sp%20ace", "%C3%A9t%C3%A9", "..%5C..%5Cwin"]
    before = tree(c.w.path)
    registry_before = fm.registry_list(c.home)
    v2 = json.dumps(c.v2_body).encode()
    tf = json.dumps(c.tf_body).encode()
    bad, seen = [], {}
    for name in names:
        for method, path, body, headers in (
                ("POST", "/v2/models/%s/infer" % name, v2, JSON),
                ("GET", "/v2/models/%s" % name, None, {}),
                ("GET", "/v2/models/%s/ready" % name, None, {}),
                ("POST", "/v1/models/%s:predict" % name, tf, JSON),
                ("POST", "/v2/repository/models/%s/versions" % name, c.model_bytes, OCTET),
                ("POST", "/v2/repository/models/%s/load" % name, None, {}),
                ("POST", "/v2/repository/models/%s/unload" % name, None, {}),
                ("PUT", "/api/models/%s/labels/staging" % name, b'{"version": 1}', JSON),
                ("DELETE", "/api/models/%s/labels/staging" % name, None, {})):
            r = s.request(method, path, body, headers=headers)
            seen[r.status] = seen.get(r.status, 0) + 1
            if r.status not in (400, 404) or not error_body(r):
                bad.append("%s %s: %d %r" % (method, path[:90], r.status, r.body[:100]))
    C.check(not bad, "%d requests naming bad model names (.., %%2F, %%00, > 64 characters, ...): "
            "each 400 or 404 with a JSON error %r" % (sum(seen.values()), seen), bad[:8])
    new = sorted(p for p in tree(c.w.path) - before)
    outside = [p for p in new if not p.startswith("home" + os.sep) or
               p.startswith(os.path.join("home", "models") + os.sep)]
    C.check(not outside, "no file or directory appeared outside the home's databases and logs",
            outside[:10])
    C.check(fm.registry_list(c.home) == registry_before, "the registry is unchanged")
    r = s.get("/v2/models/credit/ready")
    C.check(r.status == 200, "the server still serves credit", r)


# ---- audit -----------------------------------------------------------------------------------


def t_audit_sequence(C, c, s):
    K = c.keys
    before = audit_export(c.home)
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    made = []  # (response, expected action, key name) of the requests that must be audited
    for i in range(3):
        made.append((s.post("/v2/models/credit/infer", body, key=K["consumer"]), "v2.infer",
                     "test-consumer"))
    made.append((s.get("/v2/models/credit", key=K["auditor"]), "model.metadata", "test-auditor"))
    made.append((s.post("/v2/models/credit/infer", b"{not json", headers=JSON, key=K["modeler"]),
                 "v2.infer", "test-modeler"))
    made.append((s.get("/metrics", key=K["consumer"]), "metrics.read", "test-consumer"))
    unaudited = [s.post("/v2/models/credit/infer", body, key=None),
                 s.post("/v2/models/credit/infer", body, key="fmk_" + "Q" * 43),
                 s.get("/v2/models/credit", key=c.revoked["consumer"]),
                 s.get("/v2/health/live", key=None), s.get("/v2/health/ready")]
    statuses = [r.status for r, _, _ in made]
    C.equal(statuses, [200, 200, 200, 200, 400, 403], "the known sequence: 3 predictions, "
            "metadata, a bad body, a refused role")
    C.equal([r.status for r in unaudited], [401, 401, 401, 200, 200],
            "  and 3 unauthenticated requests and 2 health probes")
    after = audit_export(c.home)
    new = after[len(before):]
    C.equal(len(new), len(made), "one audit entry per authenticated request (%d), none for the "
            "401s and health probes" % len(made))
    got = [(e.get("request_id"), e.get("action"), e.get("status"), e.get("key_id"),
            e.get("model")) for e in new]
    want = [(r.header("X-Request-Id"), action, r.status, c.key_ids[name],
             None if action == "metrics.read" else "credit") for r, action, name in made]
    C.equal(got, want, "each entry has the request's id, action, status, key id and model")
    C.check(all(e.get("input_digest") for e in new[:3]) and
            all(json.dumps(c.v2_body)[:40] not in json.dumps(e) for e in new),
            "  prediction entries hold a digest of the inputs, not the inputs")
    C.check([e["seq"] for e in after] == list(range(1, len(after) + 1)),
            "the entries are numbered 1..N without gaps")


def t_audit_load(C, c, s):
    bodies = fm.single_row_bodies(c.columns, c.rows)
    per = fm.scaled(40, 10)
    failures = []

    def work(k):
        client = fm.Client(s)
        try:
            for n in range(per):
                r = client.post("/v2/models/credit/infer", bodies[(k + n) % len(bodies)])
                if r.status != 200:
                    failures.append(r)
        finally:
            client.close()

    before = len(audit_export(c.home))
    errors = fm.run_threads(8, work)
    C.check(not errors and not failures, "8 threads x %d predictions: all 200" % per,
            (errors[:1], failures[:2]))
    entries = audit_export(c.home)
    C.equal(len(entries) - before, 8 * per, "one entry per prediction under concurrency")
    rc, out, err = fm.run_cli("audit", "verify", "--home", c.home)
    m = re.search(r"audit log intact: (\d+) entries", out)
    C.check(rc == 0 and m and int(m.group(1)) == len(entries),
            "finmaas audit verify passes while the server runs (%s)" % out.strip(), (rc, err))


def t_audit_api(C, c, s):
    entries = audit_export(c.home)
    r = s.get("/api/audit?limit=100000")
    got = r.json() if r.status == 200 else []
    C.check(r.status == 200 and [e["seq"] for e in got[:len(entries)]] ==
            [e["seq"] for e in entries] and got[:len(entries)] == entries,
            "GET /api/audit (auditor): the same entries as finmaas audit export", r)
    r = s.get("/api/audit?model=mc&limit=100000")
    want = [e["seq"] for e in entries if e.get("model") == "mc"]
    C.check(r.status == 200 and want and [e["seq"] for e in r.json()] == want,
            "?model=mc: exactly the entries about mc (%d)" % len(want), r)
    mid = entries[len(entries) // 2]
    q = urllib.parse.quote(mid["time"])
    r = s.get("/api/audit?since=%s&limit=100000" % q)
    want = [e["seq"] for e in entries if e["time"] >= mid["time"]]
    C.check(r.status == 200 and [e["seq"] for e in r.json()][:len(want)] == want,
            "?since=<time of seq %d>: the entries from then on" % mid["seq"], r)
    r = s.get("/api/audit?until=%s&limit=100000" % q)
    want = [e["seq"] for e in entries if e["time"] <= mid["time"]]
    C.check(r.status == 200 and [e["seq"] for e in r.json()] == want,
            "?until=<time of seq %d>: the entries up to it" % mid["seq"], r)
    first = entries[0]["time"]
    r = s.get("/api/audit?model=credit&since=%s&until=%s&limit=100000" %
              (urllib.parse.quote(first), q))
    want = [e["seq"] for e in entries if e.get("model") == "credit" and
            first <= e["time"] <= mid["time"]]
    C.check(r.status == 200 and [e["seq"] for e in r.json()] == want,
            "model, since and until together", r)
    r = s.get("/api/audit?limit=3")
    C.check(r.status == 200 and [e["seq"] for e in r.json()] == [1, 2, 3], "?limit=3", r)
    r = s.get("/api/audit?since=yesterday")
    C.check(r.status == 400 and error_body(r), "?since=yesterday: 400", r)
    for role in ("admin", "modeler", "validator", "consumer"):
        r = s.get("/api/audit", key=c.keys[role])
        C.check(r.status == 403 and error_body(r), "GET /api/audit with a %s key: 403" % role, r)
    r = s.get("/api/audit", key=None)
    C.check(r.status == 401, "GET /api/audit without a key: 401", r)
    # an auditor key scoped to some models reads only their entries
    scoped = fm.create_key(c.home, "auditor", models="mc", name="auditor-of-mc")
    fm.wait_until(lambda: s.get("/api/audit?limit=1", key=scoped).status == 200, 5, 0.05)
    entries = audit_export(c.home)
    r = s.get("/api/audit?limit=100000", key=scoped)
    want = [e["seq"] for e in entries if e.get("model") == "mc"]
    C.check(r.status == 200 and want and [e["seq"] for e in r.json()] == want,
            "an auditor key scoped to mc: only mc's entries (%d of %d)" % (len(want),
                                                                           len(entries)), r)
    r = s.get("/api/audit?limit=2", key=scoped)
    C.check(r.status == 200 and [e["seq"] for e in r.json()] == want[:2],
            "  the limit counts its entries", r)
    r = s.get("/api/audit?model=credit", key=scoped)
    C.check(r.status == 403 and error_body(r), "  ?model=credit: 403", r)


def audit_copy(c, tag):
    """A home holding a consistent copy of the audit log (audit.log and audit.head, copied under
    a shared lock on audit.log, as finmaas readers take it, so no group is half written) and its
    key."""
    import fcntl
    home = c.w.join("audit-" + tag)
    os.makedirs(home)
    with open(os.path.join(c.home, "audit.log"), "rb") as log:
        fcntl.flock(log, fcntl.LOCK_SH)
        for name in ("audit.log", "audit.head"):
            shutil.copy(os.path.join(c.home, name), os.path.join(home, name))
        fcntl.flock(log, fcntl.LOCK_UN)
    shutil.copy(os.path.join(c.home, "audit.key"), os.path.join(home, "audit.key"))
    os.chmod(os.path.join(home, "audit.key"), 0o600)
    return home


def tamper(home, edit):
    """Rewrites the copy's audit.log in place with edit(lines) (the lines without newlines, as
    bytes; edit returns the new list)."""
    path = os.path.join(home, "audit.log")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    lines = edit(lines)
    with open(path, "r+b") as f:
        f.write(b"".join(line + b"\n" for line in lines))
        f.truncate()


def t_audit_tamper(C, c):
    n = len(audit_export(c.home))
    C.check(n >= 20, "the log has %d entries to tamper with" % n)
    rc, out, err = fm.run_cli("audit", "verify", "--home", audit_copy(c, "intact"))
    C.check(rc == 0 and ("%d entries" % n) in out, "the intact copy verifies", (rc, out, err))
    mid = n // 2

    def sub(line, pattern, replacement):
        new = re.sub(pattern, replacement, line, count=1)
        assert new != line, (pattern, line)
        return new

    def with_seq(line, seq):
        return sub(line, rb'^\{"seq":\d+,', b'{"seq":%d,' % seq)

    def hash_of(line):
        return re.search(rb'"hash":"([0-9a-f]{64})"', line).group(1)

    def other_status(line, status):  # the line with another status (status, or 1 more)
        old = int(re.search(rb'"status":(-?\d+)', line).group(1))
        return sub(line, rb'"status":-?\d+', b'"status":%d' % (status + (old == status)))

    def edit_status(lines):  # seq mid: another status, same length
        lines[mid - 1] = other_status(lines[mid - 1], 299)
        return lines

    def edit_output(lines):  # seq 3: the output replaced
        lines[2] = sub(lines[2], rb'"output":("(?:[^"\\]|\\.)*"|null)',
                       rb'"output":"{\\"probability\\":0.01}"')
        return lines

    def delete(*seqs):
        return lambda lines: [line for k, line in enumerate(lines) if k + 1 not in seqs]

    def forged_after_last(lines):  # a copy of seq n as seq n+1, linked to seq n
        forged = with_seq(lines[n - 1], n + 1)
        forged = sub(forged, rb'"prev":"[0-9a-f]{64}"', b'"prev":"%s"' % hash_of(lines[n - 1]))
        return lines + [other_status(forged, 200)]

    def forged_in_middle(lines):  # seq mid+1 forged, linked to seq mid; the later renumbered
        forged = with_seq(lines[mid - 1], mid + 1)
        forged = sub(forged, rb'"prev":"[0-9a-f]{64}"', b'"prev":"%s"' % hash_of(lines[mid - 1]))
        forged = other_status(forged, 201)
        later = [with_seq(line, mid + 2 + k) for k, line in enumerate(lines[mid:])]
        return lines[:mid] + [forged] + later

    def duplicate_in_middle(lines):  # a second seq mid, edited, right after the first
        copy = other_status(lines[mid - 1], 202)
        return lines[:mid] + [copy] + lines[mid:]

    def swap(lines):
        lines[mid - 1], lines[mid] = lines[mid], lines[mid - 1]
        return lines

    def head_seq(home):  # both slots of audit.head: seq n-1, MACs left as they were
        path = os.path.join(home, "audit.head")
        data = bytearray(open(path, "rb").read())
        for slot in (0, 128):
            data[slot + 8:slot + 16] = (n - 1).to_bytes(8, "big")
        open(path, "r+b").write(bytes(data))

    cases = [
        ("a field edited (status of seq %d)" % mid, mid, edit_status),
        ("the output edited (seq 3)", 3, edit_output),
        ("a middle line deleted (seq %d)" % mid, mid, delete(mid)),
        ("the last line deleted (seq %d), nothing else changed" % n, n, delete(n)),
        ("the last two lines deleted (seq %d and %d)" % (n - 1, n), n - 1, delete(n - 1, n)),
        ("a forged line after the last (seq %d)" % (n + 1), n + 1, forged_after_last),
        ("a forged line in the middle (seq %d, the later ones renumbered)" % (mid + 1), mid + 1,
         forged_in_middle),
        ("a forged second seq %d inserted after it" % mid, mid, duplicate_in_middle),
        ("the lines of seq %d and %d swapped" % (mid, mid + 1), mid, swap),
        ("the head's seq edited (%d)" % (n - 1), n - 1, None),
    ]
    for k, (what, seq, edit) in enumerate(cases):
        home = audit_copy(c, "t%d" % k)
        if edit:
            tamper(home, edit)
        else:
            head_seq(home)
        rc, out, err = fm.run_cli("audit", "verify", "--home", home)
        lines = err.strip().splitlines()
        named = re.search(r"\bseq %d\b" % seq, err) is not None
        C.check(rc == 1 and len(lines) == 1 and named and not out.strip(),
                "%s: verify exits 1 with one line naming seq %d" % (what, seq),
                (rc, out.strip(), err.strip()))


# ---- personal data ---------------------------------------------------------------------------


def luhn(rng, prefix, length=16):
    digits = [int(d) for d in prefix]
    while len(digits) < length - 1:
        digits.append(rng.randrange(10))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, digits + [(10 - total % 10) % 10]))


def spaced(card):
    return " ".join(card[i:i + 4] for i in range(0, len(card), 4))


def pii_data(c):
    rng = random.Random(7)
    header = ["age", "income", "region", "customer_email", "card_number", "y"]
    rows = []
    for i in range(300):
        age = rng.randint(20, 70)
        income = round(rng.gauss(3000, 800), 2)
        region = rng.choice("nsew")
        card = spaced(luhn(rng, rng.choice(["4", "51", "37"])))
        email = "cust%03d.%s@bank-example.com" % (i, rng.choice(["smith", "jones", "lee"]))
        z = 0.05 * (age - 45) + 0.002 * (income - 3000) + (0.8 if region == "n" else 0) + \
            rng.gauss(0, 1)
        rows.append([age, income, region, email, card, "yes" if z > 0 else "no"])
    c.pii_rows = [dict(zip(header, r)) for r in rows]
    return fm.write_csv(c.w.join("pii.csv"), header, rows)


def t_pii(C, c):
    data = pii_data(c)
    c.pii_model = c.w.join("pii.fmm")
    rc, train_out, train_err = fm.run_cli(
        "train", "--data", data, "--target", "y", "--out", c.pii_model, "--model", "mlp",
        "--hidden", "4", "--epochs", "3", "--seed", "1", "--positive", "yes",
        "--pii", "customer_email,card_number")
    C.check(rc == 0, "train --pii customer_email,card_number", train_err)
    home = c.w.join("home-pii")
    fm.registry_add(home, "pii", c.pii_model)
    s = server(C, c, home, "pii")
    rng = random.Random(9)
    cards = [luhn(rng, "4111"), luhn(rng, "5500"), luhn(rng, "3400", 15), luhn(rng, "6011")]
    emails = ["jane.doe@example.com", "j.smith+loans@bank.example.org", "x_y@corp.example.net"]
    secrets = set(emails)
    for card in cards:
        secrets.update({card, spaced(card), "-".join(spaced(card).split())})
    training = [r["customer_email"] for r in c.pii_rows] + [r["card_number"] for r in c.pii_rows]
    row = dict(c.pii_rows[0])

    def inputs(values, types=None):
        types = types or {}
        out = []
        for name in ("age", "income", "region", "customer_email", "card_number"):
            v = values[name]
            dt = types.get(name, "BYTES" if isinstance(v, str) else "FP64")
            out.append({"name": name, "datatype": dt, "shape": [1], "data": [v]})
        return out

    good = dict(row, customer_email=emails[0], card_number=spaced(cards[0]))
    requests = [
        ("valid row with an e-mail and a card number", "/v2/models/pii/infer",
         {"inputs": inputs(good)}, {}),
        ("card number (digits) in the PII column", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, card_number=cards[1]))}, {}),
        ("card number as a string in a numeric field", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, income=cards[0]))}, {}),
        ("card number with dashes as a string in a numeric field", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, age="-".join(spaced(cards[2]).split())))}, {}),
        ("card number as FP64 text in a numeric field", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, income=spaced(cards[3])), {"income": "FP64"})}, {}),
        ("e-mail in a numeric field", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, age=emails[1]))}, {}),
        ("e-mail in an unknown field", "/v2/models/pii/infer",
         {"inputs": inputs(good) + [{"name": "contact", "datatype": "BYTES", "shape": [1],
                                     "data": [emails[2]]}]}, {}),
        ("an unknown field named like an e-mail", "/v2/models/pii/infer",
         {"inputs": inputs(good) + [{"name": emails[1], "datatype": "BYTES", "shape": [1],
                                     "data": ["x"]}]}, {}),
        ("PII column as a number", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, card_number=int(cards[1])))}, {}),
        ("PII column with an object", "/v2/models/pii/infer",
         {"inputs": inputs(dict(good, customer_email={"email": emails[0]}),
                           {"customer_email": "BYTES"})}, {}),
        ("PII column with a wrong datatype", "/v2/models/pii/infer",
         {"inputs": inputs(good, {"card_number": "FP64"})}, {}),
        ("PII column with a wrong shape", "/v2/models/pii/infer",
         {"inputs": [dict(t, shape=[2]) if t["name"] == "customer_email" else t
                     for t in inputs(good)]}, {}),
        ("an output named like a card number", "/v2/models/pii/infer",
         {"inputs": inputs(good), "outputs": [{"name": cards[0]}]}, {}),
        ("TF instance with a card number in a numeric field", "/v1/models/pii:predict",
         {"instances": [dict(good, income=cards[0])]}, {}),
        ("TF instance with an e-mail in the card column", "/v1/models/pii:predict",
         {"instances": [dict(good, card_number=emails[0])]}, {}),
        ("TF columnar with PII and a bad value", "/v1/models/pii:predict",
         {"inputs": {k: [v] for k, v in dict(good, age=emails[2]).items()}}, {}),
        ("an e-mail as the request id", "/v2/models/pii/infer",
         {"id": emails[1], "inputs": inputs(good)}, {"X-Request-Id": emails[0]}),
        ("a card number as the request id", "/v2/models/pii/infer",
         {"inputs": inputs(good)}, {"X-Request-Id": cards[0]}),
        ("an e-mail as the model name", "/v2/models/%s/infer" % emails[0],
         {"inputs": inputs(good)}, {}),
        ("a card number as the model name", "/v2/models/%s/infer" % cards[1],
         {"inputs": inputs(good)}, {}),
        ("an e-mail as a version", "/v2/models/pii/versions/%s/infer" % emails[2],
         {"inputs": inputs(good)}, {}),
        ("a card number as a label", "/v1/models/pii/labels/%s:predict" % cards[3],
         {"instances": [good]}, {}),
    ]
    responses = []
    statuses = {}
    for what, path, body, headers in requests:
        h = dict(JSON)
        h.update(headers)
        r = s.post(path, json.dumps(body), headers=h)
        statuses[what] = r.status
        # the caller's own id may be echoed back; everything else in the answer is checked
        text = r.body.decode("utf-8", "replace")
        if "id" in body:
            text = text.replace(json.dumps(body["id"]), '""')
        responses.append((what, r.status, text))
    r = s.post("/v2/models/pii/infer",
               json.dumps({"inputs": [t for t in inputs(good)
                                      if t["name"] not in ("customer_email", "card_number")]}),
               headers=JSON)
    C.check(r.status == 200, "the categorical PII columns (no feature in the model) may be left "
            "out of a request", r)
    C.check(statuses["valid row with an e-mail and a card number"] == 200 and
            statuses["e-mail in an unknown field"] == 200,
            "requests with PII values are served (200)", statuses)
    C.check(all(st < 500 for st in statuses.values()), "no request with PII values got a 5xx",
            statuses)
    C.check(sum(st in (400, 404, 422) for st in statuses.values()) >= 10,
            "most malformed PII requests are client errors", statuses)
    stop(C, s)

    def leaks(text, values):
        return sorted({v for v in values if v in text})

    for what, status, text in responses:
        found = leaks(text, secrets)
        C.check(not found, "response (%d) to '%s' holds no card number or e-mail in clear"
                % (status, what), "%s in %r" % (found, text[:300]))
    with open(s.access_log, encoding="utf-8", errors="replace") as f:
        access = f.read()
    C.check(access.count("\n") >= len(requests), "the access log has the requests")
    C.check(not leaks(access, secrets), "the access log holds no card number or e-mail in clear",
            [line for line in access.splitlines() if leaks(line, secrets)][:3])
    export = fm.finmaas("audit", "export", "--home", home)
    C.check(export.count("\n") >= len(requests), "the audit log has the requests")
    C.check(not leaks(export, secrets), "the audit export holds no card number or e-mail in clear",
            [line[:300] for line in export.splitlines() if leaks(line, secrets)][:3])
    err = s.stderr()
    C.check(not leaks(err, secrets | set(training)),
            "the server's stderr holds no card number or e-mail in clear", leaks(err, secrets))
    masks = {"%s%s%s" % (x[:6], "*" * (len(x) - 10), x[-4:]) for x in cards}
    quoted = sorted({m for m in masks for _, _, t in responses if m in t})
    C.check(quoted, "error replies that quote a card number show it masked (%s)" % quoted)
    rc, inspect_out, inspect_err = fm.run_cli("inspect", c.pii_model)
    found = leaks(inspect_out + inspect_err, set(training))
    C.check(rc == 0 and not found, "finmaas inspect of the --pii model shows none of the "
            "training e-mails or card numbers in clear", "%d in clear, e.g. %s" % (len(found),
                                                                                   found[:3]))
    found = leaks(train_out + train_err, set(training))
    C.check(not found, "finmaas train --pii prints none of them", found[:3])
    # the command line: kept PII columns are masked with the home's tokens, errors mask values
    rows = c.w.join("pii-rows.csv")
    header = ["age", "income", "region", "customer_email", "card_number"]
    fm.write_csv(rows, header, [[good[h] for h in header], [r["age"] for r in c.pii_rows[:1]] +
                                [c.pii_rows[1][h] for h in header[1:]]])
    rc, out, err = fm.run_cli("predict", "--model", c.pii_model, "--data", rows, "--keep",
                              "customer_email")
    C.check(rc == 2 and len(err.strip().splitlines()) == 1 and "--home" in err and not out,
            "predict --keep of a PII column without --home: exit 2, one line asking for it",
            (rc, err))
    rc, out, err = fm.run_cli("predict", "--model", c.pii_model, "--data", rows, "--keep",
                              "customer_email,card_number", "--home", home)
    C.check(rc == 0 and not leaks(out, secrets | set(training)) and out.count("pii:") == 2 and
            cards[0][:6] + "*" * (len(cards[0]) - 10) + cards[0][-4:] in out,
            "predict --keep PII columns --home: written as tokens and masked card numbers", out)
    export = fm.finmaas("audit", "export", "--home", home)
    token = out.splitlines()[1].split(",")[0] if rc == 0 else "none"
    C.check(token.startswith("pii:") and token in export,
            "  the token of an e-mail is the one the server's audit log holds for it (joinable)",
            (token, [line[:200] for line in export.splitlines() if "request_id" in line][:2]))
    bad = c.w.join("pii-bad.csv")
    fm.write_csv(bad, header, [[emails[0]] + [good[h] for h in header[1:]]])
    rc, out, err = fm.run_cli("predict", "--model", c.pii_model, "--data", bad)
    C.check(rc == 2 and emails[0] not in err and "age" in err,
            "an e-mail in a numeric column: the error names the column, masks the value", err)


# ---- TLS -------------------------------------------------------------------------------------


def make_certificates(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it
    and a self-signed client certificate, with openssl (else certtool). Returns {name: path}."""
    os.makedirs(d, exist_ok=True)
    p = {n: os.path.join(d, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key",
                                         "client.pem", "client.key", "self.pem", "self.key")}

    def run(*cmd):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.decode()))

    if shutil.which("openssl"):
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        run("openssl", "req", "-x509", *ec, "-keyout", p["ca.key"], "-out", p["ca.pem"], "-days",
            "2", "-subj", "/CN=finmaas test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for name, subject, ext in (
                ("server", "/CN=127.0.0.1",
                 "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
                ("client", "/CN=loan-app", "extendedKeyUsage=clientAuth\n")):
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write(ext)
            run("openssl", "req", *ec, "-keyout", p[name + ".key"], "-out",
                os.path.join(d, name + ".csr"), "-subj", subject)
            run("openssl", "x509", "-req", "-in", os.path.join(d, name + ".csr"), "-CA",
                p["ca.pem"], "-CAkey", p["ca.key"], "-CAcreateserial", "-out", p[name + ".pem"],
                "-days", "2", "-extfile", os.path.join(d, name + ".ext"))
        run("openssl", "req", "-x509", *ec, "-keyout", p["self.key"], "-out", p["self.pem"],
            "-days", "2", "-subj", "/CN=loan-app", "-addext", "extendedKeyUsage=clientAuth")
    else:
        templates = {
            "ca": 'cn = "finmaas test CA"\nca\ncert_signing_key\nexpiration_days = 2\n',
            "server": 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ndns_name = "localhost"\n'
                      'tls_www_server\nsigning_key\nexpiration_days = 2\n',
            "client": 'cn = "loan-app"\ntls_www_client\nsigning_key\nexpiration_days = 2\n',
        }
        templates["self"] = templates["client"]
        for name, text in templates.items():
            with open(os.path.join(d, name + ".tmpl"), "w") as f:
                f.write(text)
            run("certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile",
                p[name + ".key"])
        run("certtool", "--generate-self-signed", "--load-privkey", p["ca.key"], "--template",
            os.path.join(d, "ca.tmpl"), "--outfile", p["ca.pem"])
        for name in ("server", "client"):
            run("certtool", "--generate-certificate", "--load-privkey", p[name + ".key"],
                "--load-ca-certificate", p["ca.pem"], "--load-ca-privkey", p["ca.key"],
                "--template", os.path.join(d, name + ".tmpl"), "--outfile", p[name + ".pem"])
        run("certtool", "--generate-self-signed", "--load-privkey", p["self.key"], "--template",
            os.path.join(d, "self.tmpl"), "--outfile", p["self.pem"])
    return p


def curl(s, path, *options, token=None):
    """curl -v over https to s; returns (exit status, HTTP status or 0, verbose text)."""
    cmd = ["curl", "-sS", "-v", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"]
    cmd += list(options)
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    cmd.append("https://127.0.0.1:%d%s" % (s.port, path))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = r.stdout.decode().strip()
    return r.returncode, int(out) if out.isdigit() else 0, r.stderr.decode("utf-8", "replace")


def gnutls_handshake(s, version, ca):
    """gnutls-cli offering only TLS `version` ("1.0" ... "1.3"): (completed, output)."""
    cmd = ["gnutls-cli", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS" + version, "--x509cafile",
           ca, "-p", str(s.port), "127.0.0.1"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    text = r.stdout.decode("utf-8", "replace")
    return "Handshake was completed" in text, text


def t_tls(C, c):
    if not shutil.which("curl"):
        C.check(False, "curl is needed for the TLS checks")
        return
    p = make_certificates(c.w.join("tls"))
    token = c.keys["consumer"]
    ctx = ssl.create_default_context(cafile=p["ca.pem"])
    s = server(C, c, c.home, "tls", ["--tls-cert", p["server.pem"], "--tls-key", p["server.key"]],
               tls_context=ctx)
    try:
        C.equal(s.scheme, "https", "with --tls-cert the server says it is ready on https://")
        for what, opts, proto in (("TLS 1.2", ["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                                  ("TLS 1.3", ["--tlsv1.3"], "TLSv1.3")):
            rc, status, verbose = curl(s, "/v2/models/credit/ready", "--cacert", p["ca.pem"],
                                       *opts, token=token)
            C.check(rc == 0 and status == 200 and ("SSL connection using " + proto) in verbose,
                    "curl --cacert over %s: 200" % what, (rc, status, verbose[-600:]))
        for version in ("1.1", "1.0"):
            rc, status, verbose = curl(s, "/v2/health/live", "--cacert", p["ca.pem"],
                                       "--tlsv" + version, "--tls-max", version)
            C.check(rc != 0 and status == 0, "curl --tls-max %s is refused" % version,
                    (rc, status, verbose[-400:]))
        if shutil.which("gnutls-cli"):
            done, text = gnutls_handshake(s, "1.2", p["ca.pem"])
            C.check(done, "gnutls-cli offering only TLS 1.2 completes the handshake (control)",
                    text[-400:])
            for version in ("1.1", "1.0"):
                done, text = gnutls_handshake(s, version, p["ca.pem"])
                C.check(not done, "gnutls-cli offering only TLS %s: the server refuses the "
                        "handshake" % version, text[-400:])
        else:
            C.check(False, "gnutls-cli is needed to offer TLS 1.1 and 1.0 (gnutls-bin)")
        body = {"inputs": fm.v2_inputs(c.columns, c.rows[:5])}
        r = s.post("/v2/models/credit/infer", body)
        C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred[:5], "bad") is None,
                "a prediction over TLS (python ssl) agrees with finmaas predict", r)
        r = s.get("/v2/models/credit", key=None)
        C.equal(r.status, 401, "over TLS, a request without a key is still 401")
        plain = socket.create_connection((s.host, s.port), timeout=5)
        try:
            plain.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = plain.recv(100)
        except OSError:
            answer = b""
        finally:
            plain.close()
        C.check(not answer.startswith(b"HTTP/1.1 200"), "plain HTTP to the TLS port is not served",
                answer)
    finally:
        stop(C, s)
    s = server(C, c, c.home, "mtls", ["--tls-cert", p["server.pem"], "--tls-key",
                                      p["server.key"], "--tls-client-ca", p["ca.pem"]])
    try:
        path = "/v2/models/credit/ready"
        for what, opts in (("TLS 1.2", ["--tlsv1.2", "--tls-max", "1.2"]),
                           ("TLS 1.3", ["--tlsv1.3"])):
            rc, status, verbose = curl(s, path, "--cacert", p["ca.pem"], *opts, token=token)
            C.check(status in (0, 403), "mutual TLS over %s, no client certificate: refused "
                    "(403 or no handshake), got %d" % (what, status), verbose[-400:])
            rc, status, verbose = curl(s, path, "--cacert", p["ca.pem"], "--cert",
                                       p["client.pem"], "--key", p["client.key"], *opts,
                                       token=token)
            C.check(rc == 0 and status == 200, "mutual TLS over %s, a client certificate signed "
                    "by the CA: 200" % what, (rc, status, verbose[-400:]))
            rc, status, verbose = curl(s, path, "--cacert", p["ca.pem"], "--cert",
                                       p["self.pem"], "--key", p["self.key"], *opts, token=token)
            C.check(status in (0, 403), "mutual TLS over %s, a self-signed client certificate: "
                    "refused (403 or no handshake), got %d" % (what, status), verbose[-400:])
        rc, status, verbose = curl(s, path, "--cacert", p["ca.pem"], "--cert", p["client.pem"],
                                   "--key", p["client.key"])
        C.equal(status, 401, "mutual TLS with a good certificate but no API key: 401")
    finally:
        stop(C, s)


# ---- encryption at rest ----------------------------------------------------------------------


def key_file(path):
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return path


def t_encryption(C, c):
    mk, other = key_file(c.w.join("master.key")), key_file(c.w.join("other.key"))
    env = {"FINMAAS_MASTER_KEY_FILE": mk}
    home = c.w.join("home-enc")
    v = fm.registry_add(home, "secret", c.model, env=env)
    fm.home_keys(home)
    stored_path = os.path.join(home, "models", "secret", "%d.fmm" % v)
    stored = open(stored_path, "rb").read()
    plain = c.model_bytes
    C.check(stored.startswith(b"FMENC1"), "the stored model starts with FMENC1", stored[:16])
    windows = [plain[i:i + 32] for i in range(0, len(plain) - 32, max(1, len(plain) // 64))]
    C.check(not any(w in stored for w in windows) and b"Status" not in stored,
            "the stored file holds none of the model's bytes (%d windows of 32 bytes checked)"
            % len(windows))
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:10])}
    s = server(C, c, home, "enc", env=env)
    try:
        r = s.post("/v2/models/secret/infer", body)
        C.check(r.status == 200 and fm.check_v2_binary(r.json(), c.pred[:10], "bad") is None,
                "the server decrypts and serves it: answers agree with finmaas predict", r)
    finally:
        stop(C, s)

    def refused(tag, env, words):
        fast = c.w.join("fastwatch.json")
        with open(fast, "w") as f:
            json.dump({"watch_interval_ms": 100}, f)
        s = server(C, c, home, tag, ["--config", fast], env=env)
        try:
            time.sleep(0.5)  # several registry polls, each retrying the version
            r = s.post("/v2/models/secret/infer", body)
            ready = s.get("/v2/models/secret/ready")
            err = s.stderr()
            line = next((x for x in err.splitlines() if "secret" in x), "")
            C.check(r.status in (404, 503) and ready.status != 200,
                    "%s: the model is not served (%d)" % (tag, r.status), r)
            C.check("secret" in line and "version %d" % v in line and
                    all(w in line for w in words),
                    "%s: stderr names the model and version and says %r" % (tag, words), err)
            C.equal(sum("cannot load" in x for x in err.splitlines()), 1,
                    "%s: reported once, not at every registry poll" % tag)
        finally:
            stop(C, s)

    refused("enc-other-key", {"FINMAAS_MASTER_KEY_FILE": other}, ["different master key"])
    damaged = bytearray(stored)
    damaged[len(damaged) // 2] ^= 0x01
    with open(stored_path, "wb") as f:
        f.write(damaged)
    refused("enc-tampered", env, ["tampered"])
    with open(stored_path, "wb") as f:
        f.write(stored)
    loose = c.w.join("loose.key")
    shutil.copy(mk, loose)
    os.chmod(loose, 0o644)
    p = subprocess.run([fm.FINMAAS, "serve", "--home", home, "--listen", "127.0.0.1:0"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=dict(fm.cli_env(), FINMAAS_MASTER_KEY_FILE=loose))
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    C.check(p.returncode == 2 and len(err) == 1 and "loose.key" in err[0] and "644" in err[0],
            "a master key file of mode 0644 stops the server at start: exit 2, one line naming "
            "it", (p.returncode, err))
    mode = stat.S_IMODE(os.stat(mk).st_mode)
    C.equal(mode, 0o600, "the master key file is left as it was")


# ---- rate limit ------------------------------------------------------------------------------


def t_rate_limit(C, c):
    home = c.w.join("home-rate")
    fm.registry_add(home, "credit", c.model)
    fm.home_keys(home)
    other = fm.create_key(home, "consumer", name="second")
    s = server(C, c, home, "rate", ["--rate-limit", "20", "--rate-burst", "20"])
    try:
        conn = s.connection(10)
        statuses, retry = [], []
        h = s.auth_headers("GET", "/v2/models/credit/ready")
        t0 = time.monotonic()
        for _ in range(40):
            conn.request("GET", "/v2/models/credit/ready", headers=h)
            r = conn.getresponse()
            body = r.read()
            statuses.append(r.status)
            if r.status == 429:
                retry.append((r.getheader("Retry-After"), body))
            if r.will_close:
                conn.close()
                conn = s.connection(10)
        took = time.monotonic() - t0
        conn.close()
        ok = statuses.count(200)
        refill = int(took * 20) + 1
        C.check(statuses[:20] == [200] * 20, "the first 20 of a burst of 40 are served", statuses)
        C.check(20 <= ok <= 20 + refill and statuses.count(429) == 40 - ok,
                "then 429 (%d served in %.2f s: the burst of 20 and at most %d refilled)"
                % (ok, took, refill), statuses)
        C.check(retry and all(a and a.isdigit() and int(a) >= 1 for a, _ in retry) and
                all(b"error" in b for _, b in retry),
                "every 429 has Retry-After (seconds) and a JSON error", retry[:2])
        r = s.get("/v2/models/credit/ready", key=other)
        C.equal(r.status, 200, "another key is not limited")
        wait = max(int(a) for a, _ in retry) if retry else 1
        time.sleep(wait + 0.1)
        r = s.get("/v2/models/credit/ready")
        C.equal(r.status, 200, "after Retry-After (%d s) the key is served again" % wait)
        r = s.get("/v2/health/live")
        C.equal(r.status, 200, "health probes are not limited")
    finally:
        stop(C, s)


# ---- abuse limits ----------------------------------------------------------------------------


def exchange(sock, data, timeout):
    """Sends data and reads one answer: its status line, "closed", or "no answer"."""
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
        got = sock.recv(65536)
    except socket.timeout:
        return "no answer"
    except OSError as ex:
        return "closed (%s)" % ex.__class__.__name__
    if not got:
        return "closed"
    return got.split(b"\r\n", 1)[0].decode("latin-1")


def live(s):
    """1 when the server answers a liveness probe; 0 when it refuses or drops the connection
    (a connection closed by a client counts until the server notices)."""
    try:
        return s.get("/v2/health/live", timeout=5).status == 200
    except OSError:
        return False


def t_max_connections(C, c):
    """8 connections are served while 12 more wait. Repeated: the kernel spreads connections
    over the server's HTTP threads at random, and a cap split per thread would show only when
    the spread is uneven."""
    s = server(C, c, c.home, "maxconn", ["--max-connections", "8"])
    request = b"GET /v2/models/credit/ready HTTP/1.1\r\nHost: x\r\n" + \
        s.auth_line("GET", "/v2/models/credit/ready") + b"\r\n"
    rounds, short = 3, []
    for k in range(rounds):
        socks = []
        try:
            first = []
            for _ in range(8):
                so = socket.create_connection((s.host, s.port), timeout=5)
                socks.append(so)
                first.append(exchange(so, request, 3))
            if not all(x.startswith("HTTP/1.1 200") for x in first):
                short.append((k, first))
            if k == 0:
                extra = []
                for _ in range(12):
                    try:
                        so = socket.create_connection((s.host, s.port), timeout=2)
                    except OSError as ex:
                        extra.append("refused (%s)" % ex.__class__.__name__)
                        continue
                    socks.append(so)
                    extra.append(exchange(so, request, 0.3))
                C.check(not any(x.startswith("HTTP/1.1 2") for x in extra),
                        "12 more connections are not served while 8 are open (%s)"
                        % sorted(set(extra)), extra)
                again = [exchange(so, request, 3) for so in socks[:8]]
                C.check(all(x.startswith("HTTP/1.1 200") for x in again),
                        "the first 8 keep working", again)
        finally:
            for so in socks:
                so.close()
        r, took = fm.wait_until(lambda: live(s), 10, 0.1)
        if not r:
            short.append((k, "no connection served %.1f s after they closed" % took))
    C.check(not short, "--max-connections 8: 8 open keep-alive connections are each served "
            "(%d rounds)" % rounds, short)
    stop(C, s)


def t_slow_clients(C, c):
    s = server(C, c, c.home, "timeout", ["--timeout", "2"])
    results = {}

    def idle():
        so = socket.create_connection((s.host, s.port), timeout=15)
        t0 = time.monotonic()
        so.sendall(b"GET /v2/health/li")
        try:
            so.settimeout(15)
            got = so.recv(100)
            outcome = "closed" if not got else "answered %r" % got[:20]
        except socket.timeout:
            outcome = "still open after 15 s"
        except OSError as ex:
            outcome = "closed (%s)" % ex.__class__.__name__
        results["idle"] = (time.monotonic() - t0, outcome)
        so.close()

    def trickle():
        data = (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\nX-Padding: " +
                b"p" * 200 + b"\r\n\r\n")
        so = socket.create_connection((s.host, s.port), timeout=15)
        t0 = time.monotonic()
        outcome = "still open after 10 s"
        try:
            for b in data:
                so.sendall(bytes([b]))
                so.settimeout(0.4)
                try:
                    got = so.recv(100)
                    outcome = "closed" if not got else "answered %r" % got[:20]
                    break
                except socket.timeout:
                    pass
                if time.monotonic() - t0 > 10:
                    break
        except OSError as ex:
            outcome = "closed (%s)" % ex.__class__.__name__
        results["trickle"] = (time.monotonic() - t0, outcome)
        so.close()

    threads = [threading.Thread(target=f, daemon=True) for f in (idle, trickle)]
    for t in threads:
        t.start()
    # meanwhile: a 64 KiB header block
    big = b"GET /v2/models/credit/ready HTTP/1.1\r\nHost: x\r\n" + \
        s.auth_line("GET", "/v2/models/credit/ready") + \
        b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(64)) + b"\r\n"
    r = s.raw(big, timeout=10)
    C.check(r.status in (0, 413, 431), "a 64 KiB header block: 431, 413 or closed (got %d)"
            % r.status, r)
    r = s.get("/v2/models/credit/ready")
    C.equal(r.status, 200, "after it the server serves on")
    for t in threads:
        t.join(20)
    def dropped(outcome):
        """Closed, or answered 408 (Request Timeout) and then closed."""
        return outcome and (outcome.startswith("closed") or "408" in outcome)

    took, got = results.get("idle", (None, None))
    C.check(took is not None and took < 5 and dropped(got),
            "--timeout 2: a connection idle in the middle of its request line is closed within a "
            "few seconds (%s s)" % (took and round(took, 1)), got)
    took, outcome = results.get("trickle", (None, None))
    C.check(took is not None and took < 6 and dropped(outcome),
            "--timeout 2: a client sending its headers one byte every 0.4 s is disconnected "
            "within a few seconds", "%s after %.1f s" % (outcome, took or -1))
    r = s.get("/v2/health/live")
    C.equal(r.status, 200, "the server is alive after the slow clients")
    stop(C, s)


# ---- authentication off -----------------------------------------------------------------------


def t_audit_async(C, c):
    """--audit async: answered at once, every entry committed within about 100 ms and at stop."""
    s = server(C, c, c.home, "async", ["--audit", "async"])
    before = len(audit_export(c.home))
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    answers = [s.post("/v2/models/credit/infer", body, headers={"X-Request-Id": "async-%d" % i})
               for i in range(20)]
    C.check(all(r.status == 200 for r in answers), "--audit async: 20 predictions answered 200",
            [r.status for r in answers])
    done, took = fm.wait_until(lambda: len(audit_export(c.home)) - before >= 20, 5, 0.05)
    C.check(done and took < 1.0, "  all 20 entries committed within a second (%.2f s)" % took)
    stop(C, s)
    ids = [e["request_id"] for e in audit_export(c.home)[before:]]
    C.check(ids == ["async-%d" % i for i in range(20)], "  in order, one each", ids)
    rc, out, err = fm.run_cli("audit", "verify", "--home", c.home)
    C.check(rc == 0, "  and the chain verifies", (out, err))


def t_key_changes(C, c):
    """A key revoked or created with the command line takes effect in a running server within a
    second, also when the server does not poll the registry (watch_interval_ms 0)."""
    config = c.w.join("nowatch.json")
    with open(config, "w") as f:
        json.dump({"watch_interval_ms": 0}, f)
    s = server(C, c, c.home, "nowatch", ["--config", config])
    body = {"inputs": fm.v2_inputs(c.columns, c.rows[:1])}
    token = fm.create_key(c.home, "consumer", name="short-lived")
    ok, took = fm.wait_until(lambda: s.post("/v2/models/credit/infer", body,
                                            key=token).status == 200, 5, 0.05)
    C.check(ok and took < 1.5, "a key made with finmaas keys create works within a second "
            "(%.2f s)" % took)
    fm.finmaas("keys", "revoke", "--home", c.home, "short-lived")
    gone, took = fm.wait_until(lambda: s.post("/v2/models/credit/infer", body,
                                              key=token).status == 401, 5, 0.05)
    C.check(gone and took < 1.5, "revoked with finmaas keys revoke: refused (401) within a second "
            "(%.2f s)" % took)
    stop(C, s)


def t_auth_off(C, c):
    p = subprocess.run([fm.FINMAAS, "serve", "--home", c.home, "--listen", "0.0.0.0:0", "--auth",
                        "off"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=fm.cli_env())
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    C.check(p.returncode == 2 and len(err) == 1 and "loopback" in err[0],
            "--auth off on 0.0.0.0 is refused: exit 2, one line", (p.returncode, err))
    keys_before = fm.finmaas("keys", "list", "--home", c.home, "--json")
    s = server(C, c, c.home, "noauth", ["--auth", "off"])
    config = re.search(r"finmaas serve: config (\{.*\})", s.stderr())
    shown = json.loads(config.group(1)) if config else {}
    C.check(shown.get("auth") is False and shown.get("audit") == "off" and
            shown.get("rate_limit") == 0,
            "--auth off: the printed configuration says audit off and no rate limit (what runs)",
            shown)
    try:
        r = s.post("/v2/models/credit/infer", {"inputs": fm.v2_inputs(c.columns, c.rows[:1])},
                   key=None)
        C.check(r.status == 200, "--auth off on 127.0.0.1: predictions need no key", r)
        for method, path, body in (("GET", "/api/keys", None),
                                   ("POST", "/api/keys", {"role": "admin", "name": "sneaky"}),
                                   ("DELETE", "/api/keys/test-admin", None),
                                   ("GET", "/api/audit", None)):
            try:
                r = s.request(method, path, body, key=None, timeout=10)
                got = (r.status, error_body(r))
            except Exception as ex:  # noqa: BLE001 - a dropped connection is the failure shown
                got = (0, repr(ex))
            C.check(got[0] in (403, 404, 503) and got[1] is True,
                    "--auth off: %s %s is refused with a JSON error (no key management without "
                    "authentication)" % (method, path), got)
        alive = s.proc.poll() is None
        C.check(alive, "the server without authentication is still running",
                s.stderr()[-2000:])
    finally:
        if s.proc.poll() is None:
            stop(C, s)
        else:
            C.check(False, "noauth: the server died (exit %s)" % s.proc.returncode,
                    s.stderr()[-2000:])
    C.equal(fm.finmaas("keys", "list", "--home", c.home, "--json"), keys_before,
            "no key was created or revoked")


# ---- main ------------------------------------------------------------------------------------


def sections(C, w):
    c = setup(w)
    s = server(C, c, c.home, "main")
    C.section("authorization: every route x every role x every kind of key",
              t_authorization, C, c, s)
    C.section("scoped keys in listings", t_scope_listing, C, c, s)
    C.section("maker-checker on labels", t_maker_checker, C, c, s)
    C.section("model names", t_model_names, C, c, s)
    C.section("audit: one entry per authenticated request", t_audit_sequence, C, c, s)
    C.section("audit: verify after concurrent load", t_audit_load, C, c, s)
    C.section("audit: GET /api/audit", t_audit_api, C, c, s)
    stop(C, s)
    C.section("audit: tampering is detected", t_audit_tamper, C, c)
    C.section("audit: command-line actions", t_audit_cli, C, c)
    C.section("personal data in every output channel", t_pii, C, c)
    C.section("TLS and mutual TLS", t_tls, C, c)
    C.section("encryption at rest", t_encryption, C, c)
    C.section("rate limit", t_rate_limit, C, c)
    C.section("connection limit", t_max_connections, C, c)
    C.section("slow clients and oversized headers", t_slow_clients, C, c)
    C.section("audit: the less durable mode", t_audit_async, C, c)
    C.section("keys changed by the command line", t_key_changes, C, c)
    C.section("authentication off", t_auth_off, C, c)


def main():
    return fm.run_main("finmaas serve: security", "fm-security-", sections)


if __name__ == "__main__":
    sys.exit(main())
