#!/usr/bin/env bash
# `finmaas models` through the real program: add prints the new version, list prints a table and
# valid JSON that agrees with the files on disk (sizes, SHA-256 from sha256sum), label moves and
# removes labels, --home / $FINMAAS_HOME / ./finmaas-home pick the registry, concurrent adds get
# distinct numbers. Every bad input exits 2 with exactly one line on stderr naming the problem and
# leaves the registry home exactly as it was. Run by CTest with FINMAAS set.
set -u
bin=${FINMAAS:-build/finmaas}
# Absolute, because one check runs the program from another directory.
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
dir=$(mktemp -d /tmp/fm_models_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
home=$dir/home

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# A listing of everything under the home (names, sizes), to prove a failed command changed nothing
# on disk. registry.db is left out: SQLite may touch it when it opens and closes. So is the audit
# log (audit.*): a refused change the registry got to see is recorded there, by design.
snapshot() {
    if [ -d "$home" ]; then
        (cd "$home" && find . \( -path ./registry.db\* -o -path ./audit.\* \) -prune -o \
            -printf '%p %s\n' | sort)
    fi
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
    else
        echo "ok   $(cat "$dir/stderr")"
    fi
    after=$(snapshot)
    if [ "$before" != "$after" ]; then fail "the home changed: $*"; fi
    if [ -d "$home" ] && find "$home" -name '*.tmp.*' | grep -q .; then
        fail "left a temporary file in $home: $*"
    fi
}

# expect_output WANT -- command...: exit 0 and stdout exactly WANT.
expect_output() {
    local want=$1
    shift 2
    "$@" >"$dir/stdout" 2>"$dir/stderr"
    local code=$?
    if [ "$code" -ne 0 ]; then
        fail "exit $code: $* :: $(cat "$dir/stderr")"
    elif [ "$(cat "$dir/stdout")" != "$want" ]; then
        fail "stdout '$(cat "$dir/stdout")' (want '$want'): $*"
    elif [ -s "$dir/stderr" ]; then
        fail "printed on stderr: $* :: $(cat "$dir/stderr")"
    else
        echo "ok   $* -> '$want'"
    fi
}

models() { "$bin" models "$@"; }

# Two small models trained by the real program: binary and regression.
printf 'age,income,home,y,amount\n' >"$dir/data.csv"
for i in $(seq 1 80); do
    printf '%d,%d,%s,%s,%d.5\n' $((20 + i % 40)) $((1000 + 37 * i % 900)) \
        "$( [ $((i % 3)) -eq 0 ] && echo rent || echo own)" \
        "$( [ $((i % 4)) -eq 0 ] && echo bad || echo good)" $((i % 17)) >>"$dir/data.csv"
done
"$bin" train --quiet --epochs 3 --data "$dir/data.csv" --target y --drop amount \
    --out "$dir/binary.fmm" >/dev/null || fail "training the binary model"
"$bin" train --quiet --epochs 3 --data "$dir/data.csv" --target amount --drop y \
    --out "$dir/regression.fmm" >/dev/null || fail "training the regression model"

# --help everywhere: exit 0, usage on stdout.
for sub in "" add list label; do
    # shellcheck disable=SC2086
    if out=$("$bin" models $sub --help 2>&1) && echo "$out" | grep -q "^usage: finmaas models"; then
        echo "ok   models $sub --help"
    else
        fail "models $sub --help: $out"
    fi
done
"$bin" --help | grep -q "^  models " || fail "finmaas --help does not list models"

# add prints the version alone.
expect_output 1 -- models add --home "$home" --name credit "$dir/binary.fmm"
expect_output 2 -- models add --home "$home" --name credit "$dir/binary.fmm"
expect_output 3 -- models add --name credit "$dir/binary.fmm" --home "$home"
expect_output 1 -- models add --home "$home" --name amounts "$dir/regression.fmm"
for v in 1 2 3; do
    cmp -s "$dir/binary.fmm" "$home/models/credit/$v.fmm" || fail "credit/$v.fmm differs"
done
stat -c %a "$home/models" | grep -qx 750 || fail "models/ is not mode 0750"

# Labels.
expect_output "" -- models label --home "$home" --name credit --label production --version 2
expect_output "" -- models label --home "$home" --name credit --label staging --version 3
expect_output "" -- models label --home "$home" --name credit --label canary --version 3
expect_output "" -- models label --home "$home" --name credit --label canary --remove

# The table.
models list --home "$home" >"$dir/table" 2>"$dir/stderr" || fail "list: $(cat "$dir/stderr")"
head -1 "$dir/table" | grep -q "^NAME  *VERSION  *TASK  *FAMILY  *SIZE  *CREATED  *LABELS$" ||
    fail "table header: $(head -1 "$dir/table")"
[ "$(wc -l <"$dir/table")" -eq 5 ] || fail "table has $(wc -l <"$dir/table") lines (want 5)"
awk 'NR > 1 { print $1, $2, $3, $7 }' "$dir/table" >"$dir/columns"
printf '%s\n' "amounts 1 regression -" "credit 1 binary -" "credit 2 binary production" \
    "credit 3 binary staging" | diff - "$dir/columns" >/dev/null ||
    fail "table rows: $(cat "$dir/table")"
size=$(stat -c %s "$dir/binary.fmm")
awk -v s="$size" 'NR == 3 && $5 != s { exit 1 }' "$dir/table" || fail "size column (want $size)"
models list --home "$home" --name credit | grep -vq amounts || fail "list --name shows others"
echo "ok   list table"

# JSON: valid, and in agreement with the files.
models list --home "$home" --json >"$dir/list.json" || fail "list --json"
/usr/bin/python3 -m json.tool "$dir/list.json" >/dev/null || fail "list --json is not valid JSON"
/usr/bin/python3 - "$dir/list.json" "$home" <<'EOF' || fail "list --json content"
import hashlib, json, os, sys
items = json.load(open(sys.argv[1]))
home = os.path.realpath(sys.argv[2])
assert [(i["name"], i["version"]) for i in items] == [
    ("amounts", 1), ("credit", 1), ("credit", 2), ("credit", 3)], items
want_labels = {("credit", 2): ["production"], ("credit", 3): ["staging"]}
for i in items:
    path = os.path.join(home, "models", i["name"], "%d.fmm" % i["version"])
    assert i["path"] == path, (i["path"], path)
    data = open(path, "rb").read()
    assert i["size"] == len(data)
    assert i["sha256"] == hashlib.sha256(data).hexdigest()
    assert i["task"] == ("regression" if i["name"] == "amounts" else "binary"), i
    assert i["labels"] == want_labels.get((i["name"], i["version"]), []), i
    assert len(i["created"]) == 20 and i["created"].endswith("Z"), i
print("ok   list --json agrees with the files")
EOF
sha=$(sha256sum "$home/models/credit/1.fmm" | cut -d' ' -f1)
grep -q "\"sha256\": \"$sha\"" "$dir/list.json" || fail "sha256 differs from sha256sum"
models list --home "$home" --name amounts --json | /usr/bin/python3 -c \
    'import json,sys; d=json.load(sys.stdin); assert len(d)==1 and d[0]["name"]=="amounts"' ||
    fail "list --name --json"

# Moving production.
expect_output "" -- models label --home "$home" --name credit --label production --version 3
models list --home "$home" --name credit | awk '$2 == 3 { print $7 }' | grep -qx "production,staging" ||
    fail "production did not move to version 3"

# Errors: one line, exit 2, the home untouched.
printf 'not a model at all\n' >"$dir/notes.txt"
head -c 1000 "$dir/binary.fmm" >"$dir/truncated.fmm"
expect_error "expected a subcommand" -- models
expect_error "unknown subcommand 'fly'" -- models fly
expect_error "--name is required" -- models add --home "$home" "$dir/binary.fmm"
expect_error "expected a model file" -- models add --home "$home" --name credit
expect_error "unexpected argument" -- models add --home "$home" --name credit "$dir/binary.fmm" "$dir/binary.fmm"
expect_error "unknown option '--bogus'" -- models add --home "$home" --name credit --bogus "$dir/binary.fmm"
expect_error "option '--name' needs a value" -- models add --home "$home" "$dir/binary.fmm" --name
expect_error "invalid model name '../x'" -- models add --home "$home" --name ../x "$dir/binary.fmm"
expect_error "invalid model name 'a/b'" -- models add --home "$home" --name a/b "$dir/binary.fmm"
expect_error "invalid model name '.hidden'" -- models add --home "$home" --name .hidden "$dir/binary.fmm"
expect_error "invalid model name ''" -- models add --home "$home" --name "" "$dir/binary.fmm"
expect_error "invalid model name 'h\\\\xc3\\\\xa9llo'" -- models add --home "$home" --name "héllo" "$dir/binary.fmm"
expect_error "invalid model name 'a\\\\x0ab'" -- models add --home "$home" --name "a
b" "$dir/binary.fmm"
expect_error "invalid model name" -- models add --home "$home" --name "$(printf 'x%.0s' $(seq 1 65))" "$dir/binary.fmm"
expect_error "missing.fmm: cannot open" -- models add --home "$home" --name credit "$dir/missing.fmm"
expect_error "notes.txt" -- models add --home "$home" --name credit "$dir/notes.txt"
expect_error "truncated.fmm" -- models add --home "$home" --name credit "$dir/truncated.fmm"
expect_error "truncated.fmm" -- models add --home "$home" --name newcomer "$dir/truncated.fmm"
expect_error "is a directory" -- models add --home "$home" --name credit "$dir"
[ ! -e "$home/models/newcomer" ] || fail "a failed add created models/newcomer"
expect_error "model 'credit' has no version 9" -- models label --home "$home" --name credit --label production --version 9
expect_error "no model 'nope' in the registry" -- models label --home "$home" --name nope --label production --version 1
expect_error "model 'credit' has no label 'canary'" -- models label --home "$home" --name credit --label canary --remove
expect_error "invalid label name '../p'" -- models label --home "$home" --name credit --label ../p --version 1
expect_error "--version must be an integer" -- models label --home "$home" --name credit --label p --version two
expect_error "--version must be an integer" -- models label --home "$home" --name credit --label p --version 0
expect_error "--version is required" -- models label --home "$home" --name credit --label p
expect_error "--label is required" -- models label --home "$home" --name credit --version 1
expect_error "not both" -- models label --home "$home" --name credit --label p --version 1 --remove
expect_error "no model 'nope' in the registry" -- models list --home "$home" --name nope
expect_error "invalid model name" -- models list --home "$home" --name "a b"
expect_error "unexpected argument 'extra'" -- models list --home "$home" extra
expect_error "no registry here" -- models list --home "$dir/elsewhere"
[ ! -e "$dir/elsewhere" ] || fail "list created a home"
expect_error "no registry here" -- models label --home "$dir/elsewhere" --name credit --label p --version 1
printf 'x' >"$dir/plainfile"
expect_error "plainfile" -- models add --home "$dir/plainfile" --name credit "$dir/binary.fmm"

# A damaged registry.db is refused with one line, and nothing is added.
mkdir -p "$dir/damaged/models"
head -c 4096 /dev/urandom >"$dir/damaged/registry.db"
expect_error "not a finmaas registry" -- models add --home "$dir/damaged" --name credit "$dir/binary.fmm"
expect_error "not a finmaas registry" -- models list --home "$dir/damaged"
[ -z "$(ls -A "$dir/damaged/models")" ] || fail "an add into a damaged registry wrote a file"

# The numbers continue after the failures.
expect_output 4 -- models add --home "$home" --name credit "$dir/binary.fmm"

# $FINMAAS_HOME, then ./finmaas-home.
expect_output 1 -- env FINMAAS_HOME="$dir/envhome" "$bin" models add --name m "$dir/binary.fmm"
[ -f "$dir/envhome/models/m/1.fmm" ] || fail "FINMAAS_HOME was not used"
mkdir -p "$dir/cwd"
(cd "$dir/cwd" && env -u FINMAAS_HOME "$bin" models add --name m "$dir/binary.fmm") >"$dir/stdout" ||
    fail "add with the default home"
[ "$(cat "$dir/stdout")" = 1 ] && [ -f "$dir/cwd/finmaas-home/models/m/1.fmm" ] ||
    fail "./finmaas-home was not used"
env FINMAAS_HOME="$dir/envhome" "$bin" models list | grep -q "^m  *1 " || fail "list with FINMAAS_HOME"

# Concurrent adds from separate processes never share a number.
for k in $(seq 1 6); do
    models add --home "$dir/busy" --name busy "$dir/binary.fmm" >"$dir/busy.$k" 2>&1 &
done
wait
got=$(cat "$dir"/busy.* | sort -n | tr '\n' ' ')
[ "$got" = "1 2 3 4 5 6 " ] || fail "concurrent adds got: $got"
echo "ok   concurrent adds: $got"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all models CLI checks passed"
