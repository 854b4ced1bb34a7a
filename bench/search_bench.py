#!/usr/bin/python3
"""Model search benchmark: `finmaas search` on credit_data.csv, 20 candidates x 5 folds.

Runs the search the issue describes (random search over the default space of the families given,
stratified 5-fold cross-validation on AUC, the best candidate refit on all training rows) twice:

  * on the whole file, where the search sets aside its own stratified 20% test share (seed 42):
    its wall time and CPU time on this machine are the figures, with the test AUC it reports;
  * on the 70% of the issue's reference split (scikit-learn train_test_split, test_size 0.3,
    stratified, random_state 42, as tests/ref/test_credit_quality.py), then `finmaas eval` of
    the refit model on the other 30%: the test AUC the quality goal is stated on.

Each run is repeated --repeat times (median wall time quoted). The script prints one line per
figure, PASS/MISS for the AUC goal (>= 0.845), and writes bench/out/search_bench.json.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
GOAL_AUC = 0.845


def read_csv(path):
    import pandas as pd
    return pd.read_csv(path, keep_default_na=False,
                       na_values=["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None",
                                  "<NA>", "#N/A"])


def timed(cmd):
    """Runs cmd; returns (stdout, wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout, wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--finmaas", default=str(REPO / "build" / "finmaas"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "credit_data.csv"))
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--families", default=None,
                    help="default: logistic,mlp,gbt when finmaas trains gbt, else logistic,mlp")
    ap.add_argument("--threads", type=int, default=1, help="finmaas search --threads")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--selection", default="best", help="best | one_se")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    fm = args.finmaas
    help_text = subprocess.run([fm, "train", "--help"], capture_output=True, text=True).stdout
    families = args.families or ("logistic,mlp,gbt" if "gbt" in help_text else "logistic,mlp")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="search-", dir=OUT_DIR)
    common = ["--target", "Status", "--positive", "bad", "--folds", str(args.folds), "--budget",
              str(args.budget), "--metric", "auc", "--families", families, "--seed",
              str(args.seed), "--threads", str(args.threads), "--selection", args.selection,
              "--quiet", "--json"]

    runs = []
    for r in range(args.repeat):
        model = os.path.join(work, "whole.fmm")
        out, wall, cpu = timed([fm, "search", "--data", args.data, "--out", model, *common])
        result = json.loads(out)
        runs.append({"wall_s": wall, "cpu_s": cpu, "result": result})
        print(f"run {r + 1}: wall {wall:.1f} s, CPU {cpu:.1f} s, "
              f"test AUC {result['test_metrics']['auc']:.4f}", flush=True)

    # The reference split: search on the 70%, evaluate on the 30%.
    from sklearn.model_selection import train_test_split
    frame = read_csv(args.data)
    y = (frame["Status"] == "bad").astype(int)
    a, b = train_test_split(frame, test_size=0.3, stratify=y, random_state=42)
    train, test = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
    a.to_csv(train, index=False, na_rep="NA")
    b.to_csv(test, index=False, na_rep="NA")
    model = os.path.join(work, "reference.fmm")
    out, ref_wall, ref_cpu = timed([fm, "search", "--data", train, "--holdout", "0", "--out", model,
                                    *common])
    reference = json.loads(out)
    ref_auc = json.loads(subprocess.run([fm, "eval", "--model", model, "--data", test],
                                        capture_output=True, text=True, check=True).stdout)["auc"]

    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    last = runs[-1]["result"]
    board = last["leaderboard"]
    best = [e for e in board if e["selected"]][0]
    fits = len(board) * args.folds + 1
    by_family = {}
    for e in board:
        by_family[e["params"]["family"]] = by_family.get(e["params"]["family"], 0) + 1
    own_auc = last["test_metrics"]["auc"]
    rows = last["validation"]["rows"]
    cores = os.cpu_count()
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; finmaas {fm}")
    mix = ", ".join(f"{n} {f}" for f, n in sorted(by_family.items()))
    print(f"search credit_data: {len(board)} candidates ({mix}) x {args.folds} folds + refit = "
          f"{fits} fits on {rows['train']} training rows, --threads {args.threads}")
    print(f"  wall time {wall:.1f} s (median of {args.repeat}), CPU {cpu:.1f} s, "
          f"{wall / fits * 1000:.0f} ms per fit")
    print(f"  selected ({args.selection}): candidate {best['index']} {best['params']['family']}, "
          f"CV AUC {best['mean']:.4f} +- {best['std']:.4f}")
    failed = [e for e in board if e["status"] != "ok"]
    print(f"  leaderboard: {len(board)} candidates, {len(failed)} failed")
    print(f"  test AUC on the search's own 20% test share ({rows['test']} rows): {own_auc:.4f}")
    print(f"  test AUC on the reference 30% split (search on the 70%, {ref_wall:.1f} s): "
          f"{ref_auc:.4f}, best {reference['leaderboard'][0]['params']['family']}")
    for name, value in (("own test share", own_auc), ("reference split", ref_auc)):
        print(f"{'PASS' if value >= GOAL_AUC else 'MISS'} test AUC ({name}) {value:.4f} >= "
              f"{GOAL_AUC}")

    report = {
        "machine": {"processor": platform.processor(), "cores": cores,
                    "python": platform.python_version()},
        "settings": {"budget": args.budget, "folds": args.folds, "families": families,
                     "threads": args.threads, "seed": args.seed, "selection": args.selection,
                     "data": args.data},
        "wall_s": wall, "cpu_s": cpu, "fits": fits, "own_test_auc": own_auc,
        "reference_test_auc": ref_auc, "reference_wall_s": ref_wall,
        "runs": [{"wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                  "leaderboard": r["result"]["leaderboard"],
                  "test_metrics": r["result"]["test_metrics"]} for r in runs],
        "reference": {"leaderboard": reference["leaderboard"], "test_auc": ref_auc},
    }
    path = OUT_DIR / "search_bench.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"results in {path}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
