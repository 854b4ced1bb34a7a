#!/usr/bin/env bash
# The main job: split the demo credit data (shipped in data/), train a credit-risk model on the
# training part, measure it on the held-out part, then register it and serve it over HTTP.
# Outputs go to demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/finmaas
out=demo-out
mkdir -p "$out"

echo "== split data/credit_data.csv 70/30, stratified by Status"
$bin split --data data/credit_data.csv --stratify Status --test-fraction 0.3 --seed 42 \
  --train-out "$out/train.csv" --test-out "$out/test.csv"

echo "== train a neural network (MLP 32-16, Adam) to predict Status = bad"
$bin train --data "$out/train.csv" --target Status --positive bad --model mlp --hidden 32,16 \
  --optimizer adam --lr 0.001 --epochs 200 --batch 32 --seed 42 --out "$out/credit.fmm"

echo "== metrics on the held-out test rows"
$bin eval --model "$out/credit.fmm" --data "$out/test.csv"

echo "== first predictions"
$bin predict --model "$out/credit.fmm" --data "$out/test.csv" --out "$out/predictions.csv"
head -5 "$out/predictions.csv"
echo "model: $out/credit.fmm (finmaas inspect $out/credit.fmm describes it)"

echo "== register it as model 'credit' and serve it (Ctrl-C stops)"
rm -rf "$out/home"
$bin models add --home "$out/home" --name credit "$out/credit.fmm" >/dev/null
$bin models label --home "$out/home" --name credit --label production --version 1
# Requests need an API key: a consumer key for the loan application, kept in a 0600 file.
(umask 077 && $bin keys create --home "$out/home" --role consumer --models credit \
  --name demo-app >"$out/consumer.key")
echo "score an applicant from another terminal (the key is in $out/consumer.key):"
echo "  curl -s -H \"Authorization: Bearer \$(cat $out/consumer.key)\" -H 'Content-Type: application/json' localhost:${FINMAAS_DEMO_PORT:-8080}/v2/models/credit/infer -d @docs/examples/applicant.json"
echo "and explain its score, with the adverse-action reasons (same body, /explain):"
echo "  curl -s -H \"Authorization: Bearer \$(cat $out/consumer.key)\" -H 'Content-Type: application/json' localhost:${FINMAAS_DEMO_PORT:-8080}/v2/models/credit/explain -d @docs/examples/applicant.json"
exec $bin serve --home "$out/home" --listen "127.0.0.1:${FINMAAS_DEMO_PORT:-8080}"
