#!/usr/bin/env bash
# Bad input through the real program: every case must exit 2 with exactly one line on stderr that
# names the problem, and leave no output file behind. Run by CTest with FINMAAS set.
set -u
bin=${FINMAAS:-build/finmaas}
dir=$(mktemp -d /tmp/fm_cli_errors.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_error PATTERN OUTPUT_FILE_THAT_MUST_NOT_EXIST -- command...
expect_error() {
    local pattern=$1 nofile=$2
    shift 3
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
    else
        echo "ok   $(cat "$dir/stderr")"
    fi
    if [ -n "$nofile" ] && [ -e "$nofile" ]; then fail "left a file behind: $nofile"; fi
    if ls "$dir" | grep -q '\.tmp\.'; then fail "left a temporary file in $dir"; fi
}

expect_ok() {
    "$@" >"$dir/stdout" 2>"$dir/stderr" || fail "exit $?: $* :: $(cat "$dir/stderr")"
}

out=$dir/m.fmm
train() { "$bin" train --quiet --epochs 3 --out "$out" "$@"; }

# A small valid data set.
printf 'age,income,home,y\n' >"$dir/good.csv"
for i in $(seq 1 60); do
    printf '%d,%d,%s,%s\n' $((20 + i % 40)) $((1000 + 37 * i % 900)) \
        "$( [ $((i % 3)) -eq 0 ] && echo rent || echo own)" "$( [ $((i % 4)) -eq 0 ] && echo bad || echo good)" >>"$dir/good.csv"
done

: >"$dir/empty.csv"
expect_error "empty file" "$out" -- train --data "$dir/empty.csv" --target y
printf 'age,income,home,y\n' >"$dir/header.csv"
expect_error "no data rows" "$out" -- train --data "$dir/header.csv" --target y
{ cat "$dir/good.csv"; printf '30,1200,own\n'; } >"$dir/ragged.csv"
expect_error "ragged.csv:62: expected 4 fields, found 3" "$out" -- train --data "$dir/ragged.csv" --target y
{ head -5 "$dir/good.csv"; printf '30,1200,"own,good\n31,1300,own,good\n'; } >"$dir/quote.csv"
expect_error "unterminated quoted field" "$out" -- train --data "$dir/quote.csv" --target y
expect_error "target column 'Status' is not in" "$out" -- train --data "$dir/good.csv" --target Status
awk -F, 'BEGIN{OFS=","} NR>1{$4="good"} {print}' "$dir/good.csv" >"$dir/oneclass.csv"
expect_error "only one class ('good')" "$out" -- train --data "$dir/oneclass.csv" --target y
{ cat "$dir/good.csv"; printf '30,lots,own,good\n'; } >"$dir/text.csv"
printf '{"income": "numeric"}\n' >"$dir/schema.json"
expect_error "text.csv:62" "$out" -- train --data "$dir/text.csv" --target y --schema "$dir/schema.json"
expect_error "'lots'" "$out" -- train --data "$dir/text.csv" --target y --schema "$dir/schema.json"
printf '{"income": "decimal"}\n' >"$dir/badschema.json"
expect_error "decimal" "$out" -- train --data "$dir/good.csv" --target y --schema "$dir/badschema.json"
{ cat "$dir/good.csv"; printf '30,Inf,own,good\n'; } >"$dir/inf.csv"
expect_error "finite" "$out" -- train --data "$dir/inf.csv" --target y
expect_error "positive class 'maybe'" "$out" -- train --data "$dir/good.csv" --target y --positive maybe
expect_error "does-not-exist.csv" "$out" -- train --data "$dir/does-not-exist.csv" --target y
expect_error "unknown option '--bogus'" "$out" -- train --data "$dir/good.csv" --target y --bogus
expect_error "--epochs must be an integer" "$out" -- "$bin" train --data "$dir/good.csv" --target y --epochs ten --out "$out"
expect_error "--out is required" "" -- "$bin" train --data "$dir/good.csv" --target y
expect_error "--lr must be a number" "$out" -- train --data "$dir/good.csv" --target y --lr -1
expect_error "unknown model 'forest'" "$out" -- train --data "$dir/good.csv" --target y --model forest
expect_error "cannot create" "" -- "$bin" train --data "$dir/good.csv" --target y --out /nonexistent/dir/m.fmm
expect_error "unknown command 'fly'" "" -- "$bin" fly
expect_error "PII column 'email' is not in" "$out" -- train --data "$dir/good.csv" --target y --pii income,email
expect_error "PII column 'y' is the target" "$out" -- train --data "$dir/good.csv" --target y --pii y

# NaN is a missing value and trains.
{ cat "$dir/good.csv"; printf '30,NaN,own,good\nNaN,NA,,bad\n'; } >"$dir/nan.csv"
expect_ok train --data "$dir/nan.csv" --target y
[ -s "$out" ] || fail "no model after training with NaN values"

# Prediction with an unseen category succeeds; a missing feature column is named.
expect_ok train --data "$dir/good.csv" --target y --positive bad
printf 'age,income,home\n30,1500,castle\n45,900,own\n' >"$dir/unseen.csv"
expect_ok "$bin" predict --model "$out" --data "$dir/unseen.csv" --out "$dir/p.csv"
[ "$(wc -l <"$dir/p.csv")" -eq 3 ] || fail "predict with an unseen category: $(cat "$dir/p.csv")"
head -1 "$dir/p.csv" | grep -q '^p_good,p_bad,label$' || fail "predict header: $(head -1 "$dir/p.csv")"
printf 'age,home\n30,own\n' >"$dir/nocol.csv"
expect_error "income" "$dir/p2.csv" -- "$bin" predict --model "$out" --data "$dir/nocol.csv" --out "$dir/p2.csv"
printf 'age,income,home,y\n30,1500,own,maybe\n' >"$dir/badlabel.csv"
expect_error "maybe" "" -- "$bin" eval --model "$out" --data "$dir/badlabel.csv"
expect_error "empty file" "$dir/p3.csv" -- "$bin" predict --model "$out" --data "$dir/empty.csv" --out "$dir/p3.csv"

# Damaged model files.
size=$(stat -c %s "$out")
head -c $((size / 2)) "$out" >"$dir/truncated.fmm"
expect_error "truncated.fmm" "" -- "$bin" inspect "$dir/truncated.fmm"
expect_error "truncated.fmm" "$dir/p4.csv" -- "$bin" predict --model "$dir/truncated.fmm" --data "$dir/unseen.csv" --out "$dir/p4.csv"
cp "$out" "$dir/flipped.fmm"
pos=$((size - 20))
byte=$(od -An -tu1 -j "$pos" -N1 "$out" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of="$dir/flipped.fmm" bs=1 seek="$pos" conv=notrunc status=none
cmp -s "$out" "$dir/flipped.fmm" && fail "bit flip did not change the file"
expect_error "flipped.fmm" "" -- "$bin" inspect "$dir/flipped.fmm"
expect_error "flipped.fmm" "" -- "$bin" eval --model "$dir/flipped.fmm" --data "$dir/good.csv"
printf 'not a model' >"$dir/junk.fmm"
expect_error "junk.fmm" "" -- "$bin" inspect "$dir/junk.fmm"
expect_error "expected exactly one model file" "" -- "$bin" inspect

# Progress: plain lines when stderr is not a terminal, a redrawn bar when it is.
"$bin" train --data "$dir/good.csv" --target y --epochs 3 --out "$out" >/dev/null 2>"$dir/progress"
grep -q '^epoch 3/3 loss .* val_loss .* val_auc' "$dir/progress" || fail "no plain progress lines: $(cat "$dir/progress")"
grep -q $'\r' "$dir/progress" && fail "plain progress contains carriage returns"
script -qfec "$bin train --data $dir/good.csv --target y --epochs 3 --out $out >/dev/null" /dev/null >"$dir/tty" 2>&1
grep -aq $'\r.*epoch 3/3 \\[' "$dir/tty" || fail "no progress bar on a terminal: $(od -c "$dir/tty" | head -5)"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all CLI error cases behaved"
