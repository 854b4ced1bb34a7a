#!/usr/bin/env bash
# Encryption at rest through the real program. With FINMAAS_MASTER_KEY_FILE set, `finmaas models
# add` stores the model encrypted (magic and key id checked with head -c and Python's own
# BLAKE2b; none of the model's bytes on disk), while list still reports the plaintext's size and
# SHA-256 (from sha256sum). Bad key files (mode 0644, wrong size, missing, a directory, an empty
# variable) exit 2 with one line naming the problem and leave the home as it was. `finmaas keys
# rotate-master --generate` creates a 0600 key and re-encrypts every file (plaintext ones too), a
# rerun rewrites nothing, rotating back proves every file decrypts with the new key, and its
# error cases exit 2 with one line. Run by CTest with FINMAAS set.
set -u
bin=${FINMAAS:-build/finmaas}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
dir=$(mktemp -d /tmp/fm_encryption_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
home=$dir/home
unset FINMAAS_MASTER_KEY_FILE FINMAAS_HOME

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The audit log (audit.*) is left out: a refused command that got as far as the registry is
# recorded there, by design.
snapshot() {
    if [ -d "$home" ]; then
        (cd "$home" && find . \( -path ./registry.db\* -o -path ./audit.\* \) -prune -o \
            -printf '%p %s\n' | sort)
    fi
}

# expect_error PATTERN -- command...: exit 2, one line on stderr matching PATTERN, nothing on
# stdout, the home unchanged.
expect_error() {
    local pattern=$1
    shift 2
    local before after code lines
    before=$(snapshot)
    "$@" >"$dir/stdout" 2>"$dir/stderr"
    code=$?
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
    [ "$before" = "$after" ] || fail "the home changed: $*"
}

# A key file as an operator would make one: 32 random bytes, mode 0600.
new_key() {
    head -c 32 /dev/urandom >"$1"
    chmod 600 "$1"
}

# is_under FILE KEYFILE: FILE starts with the magic and the key id of KEYFILE (BLAKE2b-256).
is_under() {
    [ "$(head -c 6 "$1")" = FMENC1 ] || return 1
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 464d454e43310000 ] || return 1
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import hashlib, sys
data = open(sys.argv[1], "rb").read(16)
key = open(sys.argv[2], "rb").read()
sys.exit(0 if data[8:16] == hashlib.blake2b(key, digest_size=32).digest()[:8] else 1)
EOF
}

# leaks FILE PLAIN: some 32-byte window of PLAIN appears in FILE.
leaks() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys
data, plain = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if any(plain[i:i + 32] in data for i in range(0, len(plain) - 32, 97)) else 1)
EOF
}

printf 'age,income,home,y\n' >"$dir/data.csv"
for i in $(seq 1 80); do
    printf '%d,%d,%s,%s\n' $((20 + i % 40)) $((1000 + 37 * i % 900)) \
        "$( [ $((i % 3)) -eq 0 ] && echo rent || echo own)" \
        "$( [ $((i % 4)) -eq 0 ] && echo bad || echo good)" >>"$dir/data.csv"
done
"$bin" train --quiet --epochs 3 --data "$dir/data.csv" --target y --out "$dir/m.fmm" \
    >/dev/null || fail "training the model"
plain_sha=$(sha256sum "$dir/m.fmm" | cut -d' ' -f1)
plain_size=$(stat -c %s "$dir/m.fmm")

new_key "$dir/k1"

# ---- models add with a master key ----
out=$(FINMAAS_MASTER_KEY_FILE=$dir/k1 "$bin" models add --home "$home" --name credit \
    "$dir/m.fmm" 2>"$dir/stderr")
[ "$out" = 1 ] || fail "encrypted add printed '$out': $(cat "$dir/stderr")"
f1=$home/models/credit/1.fmm
if is_under "$f1" "$dir/k1"; then echo "ok   1.fmm is encrypted under k1"; else fail "1.fmm not under k1"; fi
if leaks "$f1" "$dir/m.fmm"; then fail "1.fmm holds plaintext model bytes"; else echo "ok   no plaintext in 1.fmm"; fi
cmp -s "$f1" "$dir/m.fmm" && fail "1.fmm is the plaintext"
# Without the variable: plaintext, as before.
out=$("$bin" models add --home "$home" --name credit "$dir/m.fmm") || fail "plaintext add"
[ "$out" = 2 ] || fail "plaintext add printed '$out'"
cmp -s "$home/models/credit/2.fmm" "$dir/m.fmm" || fail "2.fmm is not the plaintext model"
# The listing describes the model, not the ciphertext.
"$bin" models list --home "$home" --json >"$dir/list.json" || fail "list --json"
/usr/bin/python3 - "$dir/list.json" "$plain_sha" "$plain_size" <<'EOF' || fail "list --json"
import json, sys
items = json.load(open(sys.argv[1]))
assert len(items) == 2, items
for i in items:
    assert i["sha256"] == sys.argv[2], i
    assert i["size"] == int(sys.argv[3]), i
    assert i["uploaded_by"] == "cli", i
print("ok   list reports the plaintext's sha256 and size, uploaded_by cli")
EOF

# ---- bad key files: exit 2, one line, nothing stored ----
cp "$dir/k1" "$dir/k644"
chmod 644 "$dir/k644"
FINMAAS_MASTER_KEY_FILE=$dir/k644 expect_error "$dir/k644.*0644" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
chmod 640 "$dir/k644"
FINMAAS_MASTER_KEY_FILE=$dir/k644 expect_error "0640" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
head -c 31 /dev/urandom >"$dir/short"
chmod 600 "$dir/short"
FINMAAS_MASTER_KEY_FILE=$dir/short expect_error "exactly 32 bytes" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
FINMAAS_MASTER_KEY_FILE=$dir/missing expect_error "$dir/missing" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
FINMAAS_MASTER_KEY_FILE=$dir expect_error "directory" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
FINMAAS_MASTER_KEY_FILE= expect_error "FINMAAS_MASTER_KEY_FILE is set but empty" -- \
    "$bin" models add --home "$home" --name credit "$dir/m.fmm"
# A refused key never creates a home.
FINMAAS_MASTER_KEY_FILE=$dir/k644 "$bin" models add --home "$dir/new-home" --name credit \
    "$dir/m.fmm" 2>/dev/null
[ -e "$dir/new-home" ] && fail "a refused key created a home"

# ---- keys rotate-master ----
if out=$("$bin" keys rotate-master --help) && echo "$out" | grep -q "^usage: finmaas keys rotate-master"; then
    echo "ok   keys rotate-master --help"
else
    fail "keys rotate-master --help: $out"
fi
out=$(FINMAAS_MASTER_KEY_FILE=$dir/k1 "$bin" keys rotate-master --home "$home" \
    --new-key-file "$dir/k2" --generate 2>"$dir/stderr")
code=$?
[ "$code" -eq 0 ] || fail "rotate-master --generate: exit $code: $(cat "$dir/stderr")"
echo "$out" | grep -q "^rewrote 2 file(s)" || fail "rotate-master output: $out"
echo "$out" | grep -q "FINMAAS_MASTER_KEY_FILE=$dir/k2" || fail "no hint to set the variable: $out"
[ "$(stat -c '%a %s' "$dir/k2")" = "600 32" ] || fail "k2 is $(stat -c '%a %s' "$dir/k2")"
for v in 1 2; do
    is_under "$home/models/credit/$v.fmm" "$dir/k2" || fail "$v.fmm not under k2 after rotation"
done
leaks "$home/models/credit/2.fmm" "$dir/m.fmm" && fail "2.fmm still holds plaintext"
find "$home" -name '*.tmp.*' | grep -q . && fail "temporary files left"
echo "ok   rotate-master --generate: $(echo "$out" | head -1)"
# Done: a rerun rewrites nothing.
out=$(FINMAAS_MASTER_KEY_FILE=$dir/k1 "$bin" keys rotate-master --home "$home" \
    --new-key-file "$dir/k2") || fail "rerun of rotate-master"
echo "$out" | grep -q "^rewrote 0 file(s)" || fail "rerun output: $out"
# Encrypted adds go on with the new key.
out=$(FINMAAS_MASTER_KEY_FILE=$dir/k2 "$bin" models add --home "$home" --name credit "$dir/m.fmm")
[ "$out" = 3 ] || fail "add with k2 printed '$out'"
is_under "$home/models/credit/3.fmm" "$dir/k2" || fail "3.fmm not under k2"
# Rotating k2 -> k3 decrypts every file with k2 and checks its SHA-256: all of them are sound.
out=$(FINMAAS_MASTER_KEY_FILE=$dir/k2 "$bin" keys rotate-master --home "$home" \
    --new-key-file "$dir/k3" --generate 2>"$dir/stderr") || fail "k2 -> k3: $(cat "$dir/stderr")"
echo "$out" | grep -q "^rewrote 3 file(s)" || fail "k2 -> k3 output: $out"
echo "ok   k2 -> k3: every file decrypted and verified"

# ---- rotate-master errors: exit 2, one line, home unchanged ----
expect_error "new-key-file is required" -- "$bin" keys rotate-master --home "$home"
FINMAAS_MASTER_KEY_FILE=$dir/k3 expect_error "already exists" -- \
    "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k2" --generate
FINMAAS_MASTER_KEY_FILE=$dir/k3 expect_error "no registry here" -- \
    "$bin" keys rotate-master --home "$dir/nowhere" --new-key-file "$dir/k9" --generate
[ -e "$dir/k9" ] && fail "a key file was generated for a missing home"
FINMAAS_MASTER_KEY_FILE=$dir/k644 expect_error "0640" -- \
    "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k9" --generate
[ -e "$dir/k9" ] && fail "a key file was generated with a refused old key"
# The wrong old key: every file refused; the generated key protects nothing and is removed.
FINMAAS_MASTER_KEY_FILE=$dir/k1 expect_error "different master key" -- \
    "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k9" --generate
[ -e "$dir/k9" ] && fail "an unused generated key was kept"
# No old key while the files are encrypted.
expect_error "no old key" -- "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k1"
cp "$dir/k2" "$dir/k2-open"
chmod 604 "$dir/k2-open"
FINMAAS_MASTER_KEY_FILE=$dir/k3 expect_error "0604" -- \
    "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k2-open"
FINMAAS_MASTER_KEY_FILE=$dir/k3 expect_error "same as the old" -- \
    "$bin" keys rotate-master --home "$home" --new-key-file "$dir/k3"
expect_error "unknown option" -- "$bin" keys rotate-master --home "$home" --old-key-file "$dir/k2"
for v in 1 2 3; do
    is_under "$home/models/credit/$v.fmm" "$dir/k3" || fail "$v.fmm not under k3 at the end"
done

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all encryption CLI checks passed"
