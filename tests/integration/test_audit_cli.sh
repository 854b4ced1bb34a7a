#!/usr/bin/env bash
# `finmaas audit` through the real program, on logs written by tests/tools/security_audit_append:
# verify prints the intact line and exits 0, names the first bad entry and exits 1 after tampering
# done with Python on audit.log and audit.head (a field edited, lines deleted or swapped, the head
# edited); export writes exactly the lines of audit.log, valid JSON whose hashes Python recomputes
# from the key (hashlib.blake2b) and whose prev fields chain, honours --model/--since/--until
# (inclusive) and --out (atomic, mode 0600); --home, $FINMAAS_HOME and ./finmaas-home pick the log;
# a home with only the SQLite audit.db of earlier releases is refused with a clear message.
# Every bad input exits 2 with exactly one line on stderr and nothing on stdout. Run by CTest with
# FINMAAS and FM_TOOLS set.
set -u
bin=${FINMAAS:-build/finmaas}
tools=${FM_TOOLS:-build/tests}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
append=$tools/security_audit_append
case $append in /*) ;; *) append=$PWD/$append ;; esac
python=${PYTHON:-/usr/bin/python3}
for program in "$bin" "$append"; do
    if [ ! -x "$program" ]; then
        echo "FAIL: $program is not built"
        exit 1
    fi
done
dir=$(mktemp -d /tmp/fm_audit_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
home=$dir/home
unset FINMAAS_HOME

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_error CODE PATTERN -- command...: exit CODE, one line on stderr with PATTERN, no stdout.
expect_error() {
    local want=$1 pattern=$2
    shift 3
    "$@" >"$dir/stdout" 2>"$dir/stderr"
    local code=$?
    local lines
    lines=$(wc -l <"$dir/stderr")
    if [ "$code" -ne "$want" ]; then
        fail "exit $code (want $want): $* :: $(cat "$dir/stderr")"
    elif [ "$lines" -ne 1 ]; then
        fail "stderr has $lines lines (want 1): $* :: $(cat "$dir/stderr")"
    elif ! grep -q -- "$pattern" "$dir/stderr"; then
        fail "stderr lacks '$pattern': $* :: $(cat "$dir/stderr")"
    elif [ -s "$dir/stdout" ]; then
        fail "printed on stdout: $* :: $(cat "$dir/stdout")"
    else
        echo "ok   [$code] $(cat "$dir/stderr")"
    fi
}

# expect_intact N HOME_ARGS...: verify exits 0 with the intact line for N entries.
expect_intact() {
    local n=$1
    shift
    local out code
    out=$("$bin" audit verify "$@" 2>"$dir/stderr")
    code=$?
    if [ "$code" -ne 0 ]; then
        fail "verify $*: exit $code :: $(cat "$dir/stderr")"
    elif ! [[ $out =~ ^audit\ log\ intact:\ $n\ entries,\ head\ seq\ $n\ hash\ [0-9a-f]{64}$ ]]; then
        fail "verify $*: unexpected output '$out'"
    elif [ -s "$dir/stderr" ]; then
        fail "verify $*: stderr not empty: $(cat "$dir/stderr")"
    else
        echo "ok   $out"
    fi
}

# ---- no log yet ----
expect_error 2 "no audit log here" -- "$bin" audit verify --home "$home"
expect_error 2 "no audit log here" -- "$bin" audit export --home "$home"
[ -e "$home" ] && fail "verify or export created the home"

# ---- a log: 12 entries about credit (4 threads), 3 about other ----
"$append" "$home" 12 --threads 4 --model credit >/dev/null || fail "append 12"
"$append" "$home" 3 --model other --action label.set >/dev/null || fail "append 3"
expect_intact 15 --home "$home"
FINMAAS_HOME=$home expect_intact 15
(cd "$dir" && ln -s home finmaas-home && expect_intact 15) || fail "default home"
rm -f "$dir/finmaas-home"

# ---- export: valid JSON lines, the chain links, hashes recompute with the key ----
"$bin" audit export --home "$home" >"$dir/all.jsonl" 2>"$dir/stderr" || fail "export: $(cat "$dir/stderr")"
"$python" - "$dir/all.jsonl" "$home/audit.key" <<'EOF' || fail "export check"
import hashlib, json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[-1] == "", "export must end with a newline"
lines = lines[:-1]
key = open(sys.argv[2], "rb").read()
assert len(key) == 32
fields = ["seq", "time", "key_id", "role", "action", "model", "version", "request_id", "status",
          "input_digest", "output", "detail", "prev", "hash"]
prev = "0" * 64
for i, line in enumerate(lines):
    obj = json.loads(line)
    assert list(obj) == fields, list(obj)
    assert obj["seq"] == i + 1
    assert obj["prev"] == prev, (i, obj["prev"], prev)
    canonical = {k: obj[k] for k in fields[:-2]}
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode()
    want = hashlib.blake2b(bytes.fromhex(obj["prev"]) + text, key=key, digest_size=32).hexdigest()
    assert obj["hash"] == want, (i, obj["hash"], want)
    assert len(obj["time"]) == 27 and obj["time"].endswith("Z")
    prev = obj["hash"]
assert len(lines) == 15, len(lines)
print("ok   export: 15 JSON lines, chain and keyed hashes recomputed in Python")
EOF
cmp -s "$dir/all.jsonl" "$home/audit.log" || fail "export differs from audit.log"

# The last line's hash is the head's.
head=$("$bin" audit verify --home "$home" | sed 's/.* hash //')
last=$(tail -n 1 "$dir/all.jsonl" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["hash"])')
[ "$head" = "$last" ] || fail "head hash $head differs from the last exported hash $last"

# Filters.
n=$("$bin" audit export --home "$home" --model other | wc -l)
[ "$n" -eq 3 ] || fail "--model other gave $n lines (want 3)"
"$bin" audit export --home "$home" --model other | grep -vq '"model":"other"' && fail "--model leaked"
n=$("$bin" audit export --home "$home" --model nobody | wc -l)
[ "$n" -eq 0 ] || fail "--model nobody gave $n lines"
# Entries appended by several threads at once may stand a few microseconds out of time order (each
# takes its time before queueing), so the window is the earliest to the latest of lines 5 to 9.
window=$(sed -n 5,9p "$dir/all.jsonl" | "$python" -c 'import json,sys; t=[json.loads(l)["time"] for l in sys.stdin]; print(min(t), max(t))')
since=${window% *}
until=${window#* }
want=$("$python" - "$dir/all.jsonl" "$since" "$until" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(sum(1 for r in rows if sys.argv[2] <= r["time"] <= sys.argv[3]))
EOF
)
n=$("$bin" audit export --home "$home" --since "$since" --until "$until" | wc -l)
[ "$n" -eq "$want" ] && [ "$n" -ge 5 ] || fail "--since/--until gave $n lines (want $want)"
n=$("$bin" audit export --home "$home" --until 2000-01-01 | wc -l)
[ "$n" -eq 0 ] || fail "--until 2000-01-01 gave $n lines"
n=$("$bin" audit export --home "$home" --since 2000-01-01T00:00:00+02:00 --until 9999-12-31 | wc -l)
[ "$n" -eq 15 ] || fail "a wide range gave $n lines"
day=${since:0:10}
n=$("$bin" audit export --home "$home" --since "$day" --until "$day" | wc -l)
want=$(grep -c "\"time\":\"$day" "$dir/all.jsonl")
[ "$n" -eq "$want" ] || fail "--since/--until $day gave $n lines (want $want)"

# --out: the same bytes, private, no temporary file left.
"$bin" audit export --home "$home" --out "$dir/out.jsonl" >"$dir/stdout" 2>"$dir/stderr" || fail "export --out: $(cat "$dir/stderr")"
cmp -s "$dir/out.jsonl" "$dir/all.jsonl" || fail "--out differs from stdout export"
[ -s "$dir/stdout" ] && fail "export --out printed on stdout"
[ "$(stat -c %a "$dir/out.jsonl")" = 600 ] || fail "--out mode $(stat -c %a "$dir/out.jsonl")"
ls "$dir" | grep -q '\.tmp\.' && fail "export --out left a temporary file"

# ---- errors: exit 2, one line ----
expect_error 2 "expected a subcommand" -- "$bin" audit
expect_error 2 "unknown subcommand 'bogus'" -- "$bin" audit bogus
expect_error 2 "unknown option '--bogus'" -- "$bin" audit verify --home "$home" --bogus
expect_error 2 "unexpected argument 'extra'" -- "$bin" audit verify --home "$home" extra
expect_error 2 "needs a value" -- "$bin" audit verify --home
expect_error 2 "not an ISO 8601 time" -- "$bin" audit export --home "$home" --since yesterday
expect_error 2 "not an ISO 8601 time" -- "$bin" audit export --home "$home" --until 2026-02-30
expect_error 2 "not an ISO 8601 time" -- "$bin" audit export --home "$home" --until 2026-11-29T25:00
expect_error 2 "no audit log here" -- "$bin" audit export --home "$dir/nowhere" --out "$dir/never.jsonl"
[ -e "$dir/never.jsonl" ] && fail "a failed export left its --out file"
expect_error 2 "cannot create" -- "$bin" audit export --home "$home" --out "$dir/no/such/dir/x.jsonl"
mkdir -p "$dir/empty"
expect_error 2 "no audit log here" -- "$bin" audit verify --home "$dir/empty"
echo garbage >"$dir/empty/audit.log"
expect_error 2 "not a finmaas audit log" -- "$bin" audit verify --home "$dir/empty"
expect_error 2 "not a finmaas audit log" -- "$bin" audit export --home "$dir/empty"
mkdir -p "$dir/legacy"
echo "SQLite format 3" >"$dir/legacy/audit.db"
expect_error 2 "earlier finmaas release" -- "$bin" audit verify --home "$dir/legacy"
expect_error 2 "earlier finmaas release" -- "$bin" audit export --home "$dir/legacy"
mv "$home/audit.key" "$dir/key.saved"
expect_error 2 "restore the key" -- "$bin" audit verify --home "$home"
mv "$dir/key.saved" "$home/audit.key"
chmod 644 "$home/audit.key"
expect_error 2 "chmod 600" -- "$bin" audit verify --home "$home"
chmod 600 "$home/audit.key"
expect_intact 15 --home "$home"

# ---- help ----
"$bin" audit --help | grep -q "verify" || fail "audit --help"
"$bin" audit verify --help | grep -q "1  the log has been tampered with" || fail "verify --help lacks exit 1"
"$bin" audit export --help | grep -q -- "--since" || fail "export --help"
"$bin" --help | grep -q "audit" || fail "finmaas --help lacks audit"

# ---- tampering: exit 1, one line naming the first bad entry ----
cp -r "$home" "$dir/pristine"
# tamper OP ARGS: edits audit.log or audit.head of $home in place.
#   field N OLD NEW   replace text OLD by NEW in line N     delete N...   delete lines N...
#   swap A B          swap lines A and B                      head-seq S    seq S in both head slots
tamper() {
    "$python" - "$home" "$@" <<'EOF'
import os, sys
home, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
log, head = os.path.join(home, "audit.log"), os.path.join(home, "audit.head")
lines = open(log, "rb").read().split(b"\n")[:-1]
if op == "field":
    n, old, new = int(args[0]), args[1].encode(), args[2].encode()
    assert old in lines[n - 1], (old, lines[n - 1])
    lines[n - 1] = lines[n - 1].replace(old, new, 1)
elif op == "delete":
    for n in sorted((int(a) for a in args), reverse=True):
        del lines[n - 1]
elif op == "swap":
    a, b = int(args[0]) - 1, int(args[1]) - 1
    lines[a], lines[b] = lines[b], lines[a]
elif op == "head-seq":
    data = bytearray(open(head, "rb").read())
    for slot in (0, 128):
        data[slot + 8:slot + 16] = int(args[0]).to_bytes(8, "big")
    open(head, "r+b").write(data)
if op != "head-seq":
    with open(log, "r+b") as f:
        f.write(b"".join(l + b"\n" for l in lines))
        f.truncate()
EOF
}
restore() {
    rm -rf "$home"
    cp -r "$dir/pristine" "$home"
}
tamper field 7 '"status":200' '"status":500'
expect_error 1 "seq 7: modified" -- "$bin" audit verify --home "$home"
restore
tamper delete 4
expect_error 1 "seq 4: missing" -- "$bin" audit verify --home "$home"
restore
tamper delete 14 15
expect_error 1 "seq 14 to 15: missing (deleted at the end" -- "$bin" audit verify --home "$home"
restore
tamper swap 3 10
expect_error 1 "seq 3: out of order" -- "$bin" audit verify --home "$home"
restore
tamper head-seq 14
expect_error 1 "head (seq 14): modified" -- "$bin" audit verify --home "$home"
restore
expect_intact 15 --home "$home"
# Appending goes on after a restore, and export still works on a tampered log.
"$append" "$home" 2 >/dev/null || fail "append after restore"
expect_intact 17 --home "$home"
tamper field 16 '"detail":"entry 0 of thread 0"' '"detail":"rewritten"'
n=$("$bin" audit export --home "$home" | wc -l)
[ "$n" -eq 17 ] || fail "export of a tampered log gave $n lines"
expect_error 1 "seq 16: modified" -- "$bin" audit verify --home "$home"
# The edit changed the line's length, so the entries after it moved and the head no longer
# points at the end of an entry: appending is refused.
"$append" "$home" 1 >/dev/null 2>"$dir/stderr" && fail "append to a log edited in the middle"
grep -q "tampered" "$dir/stderr" || fail "append refused without saying why: $(cat "$dir/stderr")"
# A crash mid-write leaves a final line without its newline: no entry, cut away by the next writer.
restore
printf '{"seq":16,"time":"2026' >>"$home/audit.log"
n=$("$bin" audit export --home "$home" | wc -l)
[ "$n" -eq 15 ] || fail "export with a torn final line gave $n lines"
expect_intact 15 --home "$home"
"$append" "$home" 1 >/dev/null || fail "append after a torn line"
n=$("$bin" audit export --home "$home" | "$python" -c 'import json, sys; print(sum(1 for l in sys.stdin if json.loads(l)))')
[ "$n" -eq 16 ] || fail "export after cutting the torn line gave $n entries"
expect_intact 16 --home "$home"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all audit CLI checks passed"
