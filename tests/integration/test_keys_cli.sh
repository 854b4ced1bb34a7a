#!/usr/bin/env bash
# `finmaas keys` through the real program: create prints the token alone (fmk_ + 43 base64url
# characters), keys.db is mode 0600 and holds the BLAKE2b-256 of each token (computed here with
# Python's hashlib) but never a token; list prints a table and valid JSON, newest first, without
# tokens or hashes; revoke works by id and by name; --home / $FINMAAS_HOME / ./finmaas-home pick
# the home; concurrent creates all succeed. Every bad input exits 2 with exactly one line on
# stderr naming the problem, prints nothing on stdout, leaves the keys unchanged, and never echoes
# a token. Run by CTest with FINMAAS set.
set -u
bin=${FINMAAS:-build/finmaas}
# Absolute, because one check runs the program from another directory.
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
dir=$(mktemp -d /tmp/fm_keys_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
home=$dir/home
tokens=$dir/tokens # every token created, one per line
unset FINMAAS_HOME

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

keys() { "$bin" keys "$@"; }

# The keys as JSON (or nothing when there is no keys.db), to prove a failed command changed none.
snapshot() {
    if [ -f "$home/keys.db" ]; then keys list --home "$home" --json 2>&1; fi
}

# 0 when a file contains any token created so far.
leaks_token() {
    [ -s "$tokens" ] && grep -q -F -f "$tokens" "$1"
}

# expect_error PATTERN -- command...
expect_error() {
    local pattern=$1
    shift 2
    local before after
    before=$(snapshot)
    "$@" >"$dir/stdout" 2>"$dir/stderr"
    local code=$?
    local lines
    lines=$(wc -l <"$dir/stderr")
    if [ "$code" -ne 2 ]; then
        fail "exit $code (want 2): $* :: $(cat "$dir/stderr")"
    elif [ "$lines" -ne 1 ]; then
        fail "stderr has $lines lines (want 1): $* :: $(cat "$dir/stderr")"
    elif ! grep -q -- "$pattern" "$dir/stderr"; then
        fail "stderr lacks '$pattern': $* :: $(cat "$dir/stderr")"
    elif [ -s "$dir/stdout" ]; then
        fail "printed on stdout: $* :: $(cat "$dir/stdout")"
    elif leaks_token "$dir/stderr"; then
        fail "a token appears on stderr: $*"
    else
        echo "ok   $(cat "$dir/stderr")"
    fi
    after=$(snapshot)
    if [ "$before" != "$after" ]; then fail "the keys changed: $*"; fi
}

# create_ok VAR -- args...: exit 0, stdout exactly one token line, stderr empty; VAR = the token.
create_ok() {
    local var=$1
    shift 2
    keys create "$@" >"$dir/stdout" 2>"$dir/stderr"
    local code=$?
    local token
    token=$(cat "$dir/stdout")
    if [ "$code" -ne 0 ]; then
        fail "exit $code: keys create $* :: $(cat "$dir/stderr")"
    elif [ "$(wc -l <"$dir/stdout")" -ne 1 ] ||
        ! printf '%s\n' "$token" | grep -qxE 'fmk_[A-Za-z0-9_-]{43}'; then
        fail "create printed '$token' (want the token alone): keys create $*"
    elif [ -s "$dir/stderr" ]; then
        fail "create printed on stderr: $(cat "$dir/stderr")"
    else
        echo "ok   keys create $* -> fmk_..."
    fi
    printf '%s\n' "$token" >>"$tokens"
    printf -v "$var" '%s' "$token"
}

# expect_ok -- command...: exit 0, nothing on stderr, no token on stdout.
expect_ok() {
    shift 1
    "$@" >"$dir/stdout" 2>"$dir/stderr"
    local code=$?
    if [ "$code" -ne 0 ]; then
        fail "exit $code: $* :: $(cat "$dir/stderr")"
    elif [ -s "$dir/stderr" ]; then
        fail "printed on stderr: $* :: $(cat "$dir/stderr")"
    elif leaks_token "$dir/stdout"; then
        fail "a token appears on stdout: $*"
    else
        echo "ok   $*"
    fi
}

: >"$tokens"
admin='' scoring='' auditor='' again='' envtoken='' # set by create_ok

# --help everywhere: exit 0, usage on stdout.
for sub in "" create list revoke; do
    # shellcheck disable=SC2086
    if out=$("$bin" keys $sub --help 2>&1) && echo "$out" | grep -q "^usage: finmaas keys"; then
        echo "ok   keys $sub --help"
    else
        fail "keys $sub --help: $out"
    fi
done
"$bin" --help | grep -q "^  keys " || fail "finmaas --help does not list keys"

# Errors before any keys exist: no home is created.
expect_error "no keys here" -- keys list --home "$home"
expect_error "no keys here" -- keys revoke --home "$home" ops
expect_error "--role is required" -- keys create --home "$home"
expect_error "unknown role 'root'" -- keys create --home "$home" --role root
[ ! -e "$home" ] || fail "a failed command created the home"

# Create.
create_ok admin -- --home "$home" --role admin --name ops
create_ok scoring -- --home "$home" --role consumer --models credit,fraud.v2 --name scoring
create_ok auditor -- --role auditor --home "$home"
[ "$(stat -c %a "$home/keys.db")" = 600 ] || fail "keys.db is not mode 0600"
for f in "$home"/keys.db-*; do
    [ -e "$f" ] || continue
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not mode 0600"
done
if [ "$admin" = "$scoring" ] || [ "$scoring" = "$auditor" ]; then fail "two creates gave one token"; fi

# keys.db: the BLAKE2b-256 of each token is there, the token (and its body) is not.
/usr/bin/python3 - "$home" "$tokens" <<'EOF' || fail "keys.db content"
import base64, glob, hashlib, sys
home, tokens = sys.argv[1], open(sys.argv[2]).read().split()
data = b"".join(open(p, "rb").read() for p in sorted(glob.glob(home + "/keys.db*")))
assert b"fmk_" not in data, "the token prefix is in keys.db"
for t in tokens:
    secret = base64.urlsafe_b64decode(t[4:] + "=")
    assert len(secret) == 32, t
    assert t[4:].encode() not in data and secret not in data, "a token is in keys.db"
    assert hashlib.blake2b(t.encode(), digest_size=32).digest() in data, "a token hash is missing"
print("ok   keys.db holds BLAKE2b-256 hashes and no token")
EOF

# The table: newest first, no secrets.
keys list --home "$home" >"$dir/table" 2>"$dir/stderr" || fail "list: $(cat "$dir/stderr")"
[ -s "$dir/stderr" ] && fail "list printed on stderr"
head -1 "$dir/table" | grep -q "^ID  *NAME  *ROLE  *SCOPE  *CREATED  *CREATED_BY  *REVOKED$" ||
    fail "table header: $(head -1 "$dir/table")"
[ "$(wc -l <"$dir/table")" -eq 4 ] || fail "table has $(wc -l <"$dir/table") lines (want 4)"
awk 'NR > 1 { print $3, $4, $6, $7 }' "$dir/table" >"$dir/columns"
printf '%s\n' "auditor * cli no" "consumer credit,fraud.v2 cli no" "admin * cli no" |
    diff - "$dir/columns" >/dev/null || fail "table rows: $(cat "$dir/table")"
awk 'NR > 1 { print $2 }' "$dir/table" | sed -n 2,3p | tr '\n' ' ' | grep -qx "scoring ops " ||
    fail "names: $(cat "$dir/table")"
awk 'NR == 2 && $1 != $2 { exit 1 }' "$dir/table" || fail "an unnamed key's name is not its id"
[ "$(awk 'NR > 1 { print $1 }' "$dir/table" | grep -cxE 'k_[0-9a-f]{12}')" -eq 3 ] ||
    fail "ids: $(cat "$dir/table")"
leaks_token "$dir/table" && fail "list shows a token"
echo "ok   list table"

# JSON: valid, complete, and without tokens or hashes (hex or base64).
keys list --home "$home" --json >"$dir/list.json" 2>"$dir/stderr" || fail "list --json"
[ -s "$dir/stderr" ] && fail "list --json printed on stderr"
/usr/bin/python3 - "$dir/list.json" "$dir/table" "$tokens" <<'EOF' || fail "list --json content"
import base64, hashlib, json, sys
items = json.load(open(sys.argv[1]))
table = open(sys.argv[2]).read()
text = open(sys.argv[1]).read() + table
assert [i["role"] for i in items] == ["auditor", "consumer", "admin"], items
assert [i["name"] for i in items][1:] == ["scoring", "ops"], items
assert items[0]["name"] == items[0]["id"], items[0]
assert [i["scope"] for i in items] == ["", "credit,fraud.v2", ""], items
for i in items:
    assert set(i) == {"id", "name", "role", "scope", "created", "created_by", "revoked"}, i
    assert i["created_by"] == "cli" and i["revoked"] is False, i
    assert len(i["created"]) == 20 and i["created"].endswith("Z"), i
    assert i["id"] in table
for t in open(sys.argv[3]).read().split():
    h = hashlib.blake2b(t.encode(), digest_size=32).digest()
    shown = (t, t[4:], h.hex(), base64.b64encode(h).decode(), base64.urlsafe_b64encode(h).decode())
    assert not any(s in text for s in shown), "a token or hash is listed"
print("ok   list --json")
EOF
ops_id=$(/usr/bin/python3 -c 'import json,sys; print([i["id"] for i in json.load(open(sys.argv[1])) if i["name"]=="ops"][0])' "$dir/list.json")
auditor_id=$(awk 'NR == 2 { print $1 }' "$dir/table")

# Errors: one line, exit 2, the keys unchanged, never a token.
expect_error "expected a subcommand" -- keys
expect_error "unknown subcommand 'fly'" -- keys fly
expect_error "unknown subcommand: expected" -- keys "$admin"
expect_error "--role is required" -- keys create --home "$home" --name x
expect_error "unknown role 'Admin'" -- keys create --home "$home" --role Admin
expect_error "unknown role: expected" -- keys create --home "$home" --role "$admin"
expect_error "option '--role' needs a value" -- keys create --home "$home" --role
expect_error "unknown option '--bogus'" -- keys create --home "$home" --role admin --bogus
expect_error "unexpected argument 'extra'" -- keys create --home "$home" --role admin extra
expect_error "unexpected argument (see" -- keys create --home "$home" --role admin "$admin"
expect_error "--models is empty" -- keys create --home "$home" --role consumer --models ""
expect_error "empty model name" -- keys create --home "$home" --role consumer --models "credit,,fraud"
expect_error "empty model name" -- keys create --home "$home" --role consumer --models "credit,"
expect_error "invalid model name '../x' in scope" -- keys create --home "$home" --role consumer --models "credit,../x"
expect_error "invalid model name 'a b' in scope" -- keys create --home "$home" --role consumer --models "a b"
expect_error "invalid model name" -- keys create --home "$home" --role consumer --models "$(printf 'm%.0s' $(seq 1 65))"
expect_error "scope is 1039 characters long" -- keys create --home "$home" --role consumer --models "$(printf 'model_%03d,' $(seq 1 103))abcdefghi"
expect_error "API token (withheld)" -- keys create --home "$home" --role consumer --models "credit,$admin"
expect_error "an active key named 'ops' already exists" -- keys create --home "$home" --role admin --name ops
expect_error "are key ids" -- keys create --home "$home" --role admin --name k_0123456789ab
expect_error "invalid key name '.x'" -- keys create --home "$home" --role admin --name .x
expect_error "invalid key name 'a\\\\x0ab'" -- keys create --home "$home" --role admin --name "a
b"
expect_error "invalid key name" -- keys create --home "$home" --role admin --name ""
expect_error "may not contain 'fmk_'" -- keys create --home "$home" --role admin --name "$admin"
expect_error "unexpected argument 'extra'" -- keys list --home "$home" extra
expect_error "unexpected argument (see" -- keys list --home "$home" "$admin"
expect_error "unknown option '--all'" -- keys list --home "$home" --all
expect_error "expected a key id or name" -- keys revoke --home "$home"
expect_error "expected one key id or name, got 2" -- keys revoke --home "$home" ops "$admin"
expect_error "no key with id or name 'nobody'" -- keys revoke --home "$home" nobody
expect_error "no key with id or name 'k_000000000000'" -- keys revoke --home "$home" k_000000000000
expect_error "looks like an API token" -- keys revoke --home "$home" "$scoring"
expect_error "no keys here" -- keys list --home "$dir/elsewhere"
expect_error "no keys here" -- keys revoke --home "$dir/elsewhere" ops
[ ! -e "$dir/elsewhere" ] || fail "list or revoke created a home"
expect_error "no keys here" -- env FINMAAS_HOME="$dir/elsewhere" "$bin" keys list
printf 'x' >"$dir/plainfile"
expect_error "plainfile" -- keys create --home "$dir/plainfile" --role admin
expect_error "no keys here" -- keys list --home "$dir/plainfile"

# A damaged keys.db is refused with one line.
mkdir -p "$dir/damaged"
head -c 4096 /dev/urandom >"$dir/damaged/keys.db"
expect_error "not a finmaas keys database" -- keys create --home "$dir/damaged" --role admin
expect_error "not a finmaas keys database" -- keys list --home "$dir/damaged"
expect_error "not a finmaas keys database" -- keys revoke --home "$dir/damaged" ops

# Revoke by name and by id; again is harmless.
expect_ok -- keys revoke --home "$home" ops
expect_ok -- keys revoke --home "$home" "$auditor_id"
expect_ok -- keys revoke --home "$home" "$ops_id"
keys list --home "$home" --json | /usr/bin/python3 -c '
import json, sys
items = json.load(sys.stdin)
state = {i["name"] if i["name"] != i["id"] else "auditor": i["revoked"] for i in items}
assert state == {"ops": True, "auditor": True, "scoring": False}, state' ||
    fail "revocation state"
keys list --home "$home" | awk '$2 == "ops" { print $7 }' | grep -qx yes || fail "table: ops not revoked"
# A revoked key's name may be used again.
create_ok again -- --home "$home" --role admin --name ops
[ "$(keys list --home "$home" --json | grep -c '"name": "ops"')" -eq 2 ] || fail "two keys named ops"
if [ "$again" = "$admin" ]; then fail "a revoked key's token was handed out again"; fi

# $FINMAAS_HOME, then ./finmaas-home.
FINMAAS_HOME="$dir/envhome" create_ok envtoken -- --role modeler
[ -f "$dir/envhome/keys.db" ] || fail "FINMAAS_HOME was not used"
[ -n "$envtoken" ] || fail "create with FINMAAS_HOME printed no token"
mkdir -p "$dir/cwd"
(cd "$dir/cwd" && env -u FINMAAS_HOME "$bin" keys create --role auditor) >"$dir/stdout" ||
    fail "create with the default home"
cat "$dir/stdout" >>"$tokens"
[ -f "$dir/cwd/finmaas-home/keys.db" ] || fail "./finmaas-home was not used"
env FINMAAS_HOME="$dir/envhome" "$bin" keys list | grep -q " modeler " || fail "list with FINMAAS_HOME"

# Concurrent creates from separate processes all succeed with distinct tokens.
for k in $(seq 1 6); do
    keys create --home "$dir/busy" --role consumer >"$dir/busy.$k" 2>&1 &
done
wait
cat "$dir"/busy.* >>"$tokens"
[ "$(cat "$dir"/busy.* | grep -cxE 'fmk_[A-Za-z0-9_-]{43}')" -eq 6 ] ||
    fail "concurrent creates: $(cat "$dir"/busy.*)"
[ "$(cat "$dir"/busy.* | sort -u | wc -l)" -eq 6 ] || fail "concurrent creates share a token"
[ "$(keys list --home "$dir/busy" | wc -l)" -eq 7 ] || fail "concurrent creates: list"
echo "ok   concurrent creates"

# Finally: no list output of any home ever showed a token.
for h in "$home" "$dir/envhome" "$dir/cwd/finmaas-home" "$dir/busy"; do
    keys list --home "$h" >"$dir/out" 2>&1
    keys list --home "$h" --json >>"$dir/out" 2>&1
    leaks_token "$dir/out" && fail "list of $h shows a token"
done
[ "$(sort -u "$tokens" | wc -l)" -eq "$(wc -l <"$tokens")" ] || fail "a token was handed out twice"
echo "ok   no token in any listing ($(wc -l <"$tokens") tokens)"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all keys CLI checks passed"
