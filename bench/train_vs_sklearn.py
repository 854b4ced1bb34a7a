#!/usr/bin/python3
"""Training and prediction benchmark: finmaas against scikit-learn, one thread each.

One run generates a seeded synthetic binary classification set (make_classification, 200,000 rows
x 30 numeric features by default), writes it as CSV, and then on the same files and machine:

  * trains scikit-learn's StandardScaler + MLPClassifier (32, 16), relu, adam, batch 200, and
    `finmaas train --model mlp` with the same settings, for exactly --epochs epochs;
  * measures prediction throughput twice: model only, both the same way (the data read into
    memory once, then the whole table scored 5 times, median: sklearn predict_proba, and
    bench/predict_in_memory.c over fm_model_predict_frame), and end to end (pandas read_csv +
    scaling + predict_proba + to_csv, against the wall time of the `finmaas predict` process,
    whose --stats also give its streaming scoring time);
  * records the peak resident memory of every process with /usr/bin/time -f %M;
  * trains both once more on an 80% split and scores the held-out 20% (AUC), so the reader sees
    both learned equally well.

Every timed measurement is repeated --repeat times (sklearn and finmaas alternate, so drift on a
shared machine hits both) and medians are quoted. The script prints a table, the ratios against
the project's goals (train time <= 0.5x sklearn, predict rows/s >= 2x sklearn for model-only and
end-to-end separately) with PASS/MISS, and writes everything to bench/out/train_vs_sklearn.json.

The scikit-learn side runs in child processes of this same script (hidden --peer option) whose
environment pins OpenBLAS/OpenMP/MKL to one thread before NumPy is imported; that is why this file
imports NumPy, pandas and scikit-learn only inside functions.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Goals the project set for itself (see bench/README.md).
GOAL_TRAIN_RATIO = 0.5  # finmaas train seconds / sklearn fit seconds, at most
GOAL_PREDICT_RATIO = 2.0  # finmaas rows/s / sklearn rows/s, at least

# Both engines read the same CSV text, so the precision written here is the data's precision.
CSV_FLOAT_FORMAT = "%.7g"
# Probabilities written by the sklearn end-to-end peer: as many digits as finmaas predict writes.
PROBA_FLOAT_FORMAT = "%.9g"
PROBA_REPETITIONS = 5
# Test AUCs further apart than this mean the two engines did not learn the same thing.
AUC_TOLERANCE = 0.01
# A command that runs this long is hung, not slow: report it and go on.
COMMAND_TIMEOUT = 1800


# --------------------------------------------------------------------------------------------
# scikit-learn peer (runs in a child process with one BLAS thread)
# --------------------------------------------------------------------------------------------


def peer_main(task, args):
    for name, value in ONE_THREAD.items():
        if os.environ.get(name) != value:
            raise SystemExit(f"peer: {name} must be {value} before NumPy is imported")
    import pickle
    import resource
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_info

    def read_xy(path):
        frame = pd.read_csv(path)
        y = frame.pop("y").to_numpy() if "y" in frame.columns else None
        return frame.to_numpy(dtype=np.float64), y

    result = {"task": task}
    if task == "fit":
        epochs = args["epochs"]
        x, y = read_xy(args["data"])
        model = make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(32, 16),
                activation="relu",
                solver="adam",
                batch_size=200,
                learning_rate_init=0.001,
                alpha=0.0001,
                max_iter=epochs,
                shuffle=True,
                random_state=0,
                early_stopping=False,
                tol=0,
                n_iter_no_change=epochs + 1,
            ),
        )
        with warnings.catch_warnings():
            # max_iter is reached on purpose: a fixed number of epochs, as finmaas runs.
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(x, y)
            result["fit_seconds"] = time.perf_counter() - start
        result["epochs_run"] = int(model[-1].n_iter_)
        result["rows"] = int(x.shape[0])
        result["final_loss"] = float(model[-1].loss_)
        with open(args["model"], "wb") as f:
            pickle.dump(model, f)
        if args.get("test"):
            x_test, y_test = read_xy(args["test"])
            result["auc"] = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
            result["test_rows"] = int(x_test.shape[0])
    elif task == "proba":
        with open(args["model"], "rb") as f:
            model = pickle.load(f)
        x, _ = read_xy(args["data"])
        times = []
        for _ in range(PROBA_REPETITIONS):
            start = time.perf_counter()
            p = model.predict_proba(x)
            times.append(time.perf_counter() - start)
        assert p.shape == (x.shape[0], 2)
        result["rows"] = int(x.shape[0])
        result["seconds"] = times
    elif task == "e2e":
        start = time.perf_counter()
        with open(args["model"], "rb") as f:
            model = pickle.load(f)
        frame = pd.read_csv(args["data"])
        frame.pop("y")
        read_done = time.perf_counter()
        p = model.predict_proba(frame.to_numpy(dtype=np.float64))
        predict_done = time.perf_counter()
        # The same columns finmaas predict writes: p_<class> for each class, then the label.
        classes = model.classes_
        out = pd.DataFrame({f"p_{c}": p[:, i] for i, c in enumerate(classes)})
        out["label"] = classes[p.argmax(axis=1)]
        out.to_csv(args["out"], index=False, float_format=PROBA_FLOAT_FORMAT)
        end = time.perf_counter()
        result["seconds"] = end - start
        result["read"] = read_done - start
        result["predict"] = predict_done - read_done
        result["write"] = end - predict_done
        result["rows"] = int(p.shape[0])
    else:
        raise SystemExit(f"peer: unknown task {task}")
    result["blas"] = [
        {k: info.get(k) for k in ("internal_api", "num_threads", "version")}
        for info in threadpool_info()
    ]
    result["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Process running and measuring
# --------------------------------------------------------------------------------------------


class CommandFailed(Exception):
    pass


def run_measured(argv, env_extra, label):
    """Runs argv under /usr/bin/time; returns (stdout, stderr, wall s, peak KiB, cpu s)."""
    env = dict(os.environ)
    env.update(env_extra)
    with tempfile.NamedTemporaryFile("r", prefix="fm-bench-time-", delete=False) as f:
        time_file = f.name
    try:
        cmd = [TIME, "-o", time_file, "-f", "%M %U %S"] + [str(a) for a in argv]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"{label} did not finish in {COMMAND_TIMEOUT} s\n"
                                f"  command: {' '.join(str(a) for a in argv)}")  # fmt: skip
        wall = time.perf_counter() - start
        with open(time_file) as f:
            time_lines = f.read().strip().splitlines()
    finally:
        os.unlink(time_file)
    if proc.returncode != 0:
        raise CommandFailed(
            f"{label} failed (exit {proc.returncode})\n"
            f"  command: {' '.join(str(a) for a in argv)}\n"
            f"  stdout: {proc.stdout.strip()[-2000:]!r}\n"
            f"  stderr: {proc.stderr.strip()[-2000:]!r}"
        )
    # /usr/bin/time appends its figures as the last line (after any "Command exited" note).
    peak, user, system = time_lines[-1].split()
    return proc.stdout, proc.stderr, wall, int(peak), float(user) + float(system)


def parse_one_json(text, label, where):
    """The single JSON object in text (the brief's contract); lenient about a trailing newline."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        raise CommandFailed(f"{label}: {where} is not one JSON object: {stripped[-2000:]!r}")
    if not isinstance(value, dict):
        raise CommandFailed(f"{label}: {where} is JSON but not an object: {stripped[-2000:]!r}")
    return value


def run_peer(task, args):
    argv = [PYTHON, Path(__file__).resolve(), "--peer", task, "--peer-args", json.dumps(args)]
    out, _, wall, peak, cpu = run_measured(argv, ONE_THREAD, f"sklearn peer '{task}'")
    result = parse_one_json(out.strip().splitlines()[-1], f"sklearn peer '{task}'", "stdout")
    result.update(wall=wall, peak_kib=peak, cpu=cpu)
    return result


def finmaas_train(finmaas, data, model, epochs, seed=0):
    argv = [finmaas, "train", "--data", data, "--target", "y", "--positive", "1",
            "--model", "mlp", "--hidden", "32,16", "--activation", "relu",
            "--optimizer", "adam", "--lr", "0.001", "--batch", "200", "--epochs", epochs,
            "--l2", "0.0001", "--valid-fraction", "0", "--threads", "1", "--seed", seed,
            "--quiet", "--out", model]  # fmt: skip
    out, _, wall, peak, cpu = run_measured(argv, ONE_THREAD, "finmaas train")
    report = parse_one_json(out, "finmaas train", "stdout")
    try:
        seconds = report["seconds"]
        result = {"read": float(seconds["read"]), "train": float(seconds["train"]),
                  "total": float(seconds["total"]), "rows": int(report["rows"]["train"]),
                  "valid_rows": int(report["rows"]["valid"])}  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise CommandFailed(f"finmaas train: stdout JSON lacks {e}: {out.strip()[-2000:]!r}")
    if "epochs_run" in report and report["epochs_run"] != epochs:
        raise CommandFailed(f"finmaas train ran {report['epochs_run']} epochs, not {epochs}")
    result.update(wall=wall, peak_kib=peak, cpu=cpu, report=report)
    return result


def finmaas_predict(finmaas, model, data, out_csv):
    argv = [finmaas, "predict", "--model", model, "--data", data, "--out", out_csv, "--stats"]
    _, err, wall, peak, cpu = run_measured(argv, ONE_THREAD, "finmaas predict")
    lines = [line for line in err.strip().splitlines() if line.strip()]
    stats = parse_one_json(lines[-1] if lines else "", "finmaas predict --stats", "stderr")
    try:
        result = {"rows": int(stats["rows"]), "read": float(stats["seconds"]["read"]),
                  "predict": float(stats["seconds"]["predict"]),
                  "write": float(stats["seconds"]["write"]),
                  "total": float(stats["seconds"]["total"])}  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise CommandFailed(f"finmaas predict: --stats JSON lacks {e}: {err.strip()[-2000:]!r}")
    if len(lines) > 1:
        result["stderr_extra"] = lines[:-1]
    result.update(wall=wall, peak_kib=peak, cpu=cpu)
    return result


def finmaas_in_memory(finmaas, model, data):
    """finmaas's model-only time measured as sklearn's is: data in memory, scored repeatedly
    (bench/predict_in_memory.c, built beside finmaas as bench/fm_bench_predict)."""
    tool = Path(finmaas).resolve().parent / "bench" / "fm_bench_predict"
    if not tool.exists():
        raise CommandFailed(f"{tool} is missing: build the fm_bench_predict target")
    out, _, _, _, _ = run_measured([str(tool), model, data, str(PROBA_REPETITIONS)], ONE_THREAD,
                                   "fm_bench_predict")  # fmt: skip
    return parse_one_json(out, "fm_bench_predict", "stdout")


def finmaas_eval(finmaas, model, data):
    argv = [finmaas, "eval", "--model", model, "--data", data]
    out, _, wall, peak, cpu = run_measured(argv, ONE_THREAD, "finmaas eval")
    report = parse_one_json(out, "finmaas eval", "stdout")
    if "auc" not in report:
        raise CommandFailed(f"finmaas eval: stdout JSON has no 'auc': {out.strip()[-2000:]!r}")
    return {"auc": float(report["auc"]), "wall": wall, "peak_kib": peak, "report": report}


def auc_of_predictions(pred_csv, truth_csv):
    """AUC of a finmaas predictions file, computed by scikit-learn (an independent check)."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    pred = pd.read_csv(pred_csv)
    truth = pd.read_csv(truth_csv, usecols=["y"])["y"].to_numpy()
    numeric = [c for c in pred.columns if pd.api.types.is_float_dtype(pred[c])]
    if len(pred) != len(truth) or not numeric:
        return None, list(pred.columns)
    # Prefer a column that names the positive class or a probability; else the last float column.
    preferred = [c for c in numeric if re.search(r"(prob|score|_1$|^1$|^p$)", str(c), re.I)]
    column = (preferred or numeric)[-1]
    return float(roc_auc_score(truth, pred[column].to_numpy())), column


# --------------------------------------------------------------------------------------------
# Data, environment and report
# --------------------------------------------------------------------------------------------


def generate_data(directory, rows, features, seed):
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    # Realistic difficulty: 12 informative features, 6 linear combinations of them, the rest
    # noise; 5% flipped labels; about 30% positives; random shifts and scales (1 to 100), so
    # standardisation matters as it does for money amounts next to ratios.
    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=12, n_redundant=6, n_repeated=0,
        n_classes=2, n_clusters_per_class=2, weights=[0.7, 0.3], flip_y=0.05, class_sep=0.8,
        shift=None, scale=None, random_state=seed)  # fmt: skip
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    frame["y"] = y.astype(np.int64)
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame["y"])
    paths = {name: directory / f"{name}.csv" for name in ("full", "train", "test")}
    for name, part in (("full", frame), ("train", train), ("test", test)):
        part.to_csv(paths[name], index=False, float_format=CSV_FLOAT_FORMAT)
    info = {
        "rows": rows, "features": features, "seed": seed, "positive_rate": float(y.mean()),
        "train_rows": len(train), "test_rows": len(test),
        "csv_bytes": paths["full"].stat().st_size,
    }  # fmt: skip
    return paths, info


def machine_info(finmaas):
    info = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = re.findall(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    import numpy
    import pandas
    import sklearn

    info.update(sklearn=sklearn.__version__, numpy=numpy.__version__, pandas=pandas.__version__)
    try:
        info["git"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        pass
    if finmaas:
        version = subprocess.run([finmaas, "--version"], capture_output=True, text=True)
        info["finmaas"] = version.stdout.strip()
        info["finmaas_build_type"] = build_type(finmaas)
    return info


def build_type(finmaas):
    """CMAKE_BUILD_TYPE of the build tree holding finmaas (empty means the project's Release)."""
    cache = Path(finmaas).resolve().parent / "CMakeCache.txt"
    try:
        match = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache.read_text(), re.M)
    except OSError:
        return "unknown"
    value = match.group(1).strip() if match else ""
    return value or "Release"


def median(values):
    return statistics.median(values) if values else None


def fmt_seconds(value):
    return "-" if value is None else f"{value:.3f} s"


def fmt_rate(value):
    return "-" if value is None else f"{value:,.0f} rows/s"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def ratio(a, b):
    return a / b if a is not None and b else None


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(r)))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def benchmark(opts):
    finmaas = None if opts.no_finmaas else str(Path(opts.finmaas).resolve())
    if finmaas and not os.access(finmaas, os.X_OK):
        raise SystemExit(f"train_vs_sklearn: no finmaas executable at {finmaas} "
                         "(build it, pass --finmaas PATH, or --no-finmaas)")  # fmt: skip
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="train-", dir=OUT_DIR))
    failures = []
    try:
        started = time.perf_counter()
        paths, data = generate_data(work, opts.rows, opts.features, opts.seed)
        machine = machine_info(finmaas)
        print(f"data: {data['rows']:,} rows x {data['features']} features, "
              f"{data['positive_rate']:.1%} positive, {data['csv_bytes'] / 2**20:.0f} MiB CSV "
              f"(generated in {time.perf_counter() - started:.1f} s) in {work}")  # fmt: skip
        print(f"machine: {machine['cpu']}, {machine['cpus']} CPUs; scikit-learn "
              f"{machine['sklearn']}, NumPy {machine['numpy']}, pandas {machine['pandas']}"
              + (f"; {machine['finmaas']} ({machine['finmaas_build_type']})" if finmaas else ""))
        if finmaas and machine["finmaas_build_type"] != "Release":
            print(f"WARNING: finmaas is a {machine['finmaas_build_type']} build; "
                  "its timings are not representative")  # fmt: skip
        print(f"settings: MLP (32, 16) relu, adam lr 0.001, batch 200, L2 0.0001, "
              f"{opts.epochs} epochs, one thread each, {opts.repeat} repetitions\n")

        sk_model = work / "sklearn.pkl"
        fm_model = work / "finmaas.fmm"
        sk = {"fit": [], "e2e": []}
        fm = {"train": [], "predict": []}

        def attempt(fn, *args):
            try:
                return fn(*args)
            except CommandFailed as e:
                failures.append(str(e))
                print(f"FAILED: {e}", flush=True)
                return None

        # Training, alternating the two engines each repetition.
        for r in range(opts.repeat):
            res = run_peer("fit", {"data": str(paths["full"]), "model": str(sk_model),
                                   "epochs": opts.epochs})  # fmt: skip
            if res["epochs_run"] != opts.epochs:
                failures.append(f"sklearn ran {res['epochs_run']} epochs, not {opts.epochs}")
            sk["fit"].append(res)
            line = f"train {r + 1}/{opts.repeat}: sklearn fit {res['fit_seconds']:.2f} s"
            if finmaas and len(fm["train"]) == r:  # stop after a failed finmaas run
                got = attempt(finmaas_train, finmaas, paths["full"], fm_model,
                              opts.epochs)  # fmt: skip
                if got:
                    fm["train"].append(got)
                    line += f", finmaas train {got['train']:.2f} s"
            print(line, flush=True)

        # Model-only prediction rate of sklearn: one process, median of 5 in-memory calls.
        sk_proba = run_peer("proba", {"data": str(paths["full"]), "model": str(sk_model)})
        line = (f"predict (model only, in memory): sklearn predict_proba median of "
                f"{PROBA_REPETITIONS} {median(sk_proba['seconds']):.3f} s")
        fm_memory = None
        if finmaas and fm["train"]:
            fm_memory = attempt(finmaas_in_memory, finmaas, fm_model, paths["full"])
            if fm_memory:
                line += f", finmaas median of {PROBA_REPETITIONS} {median(fm_memory['seconds']):.3f} s"
        print(line, flush=True)

        # End-to-end prediction and the finmaas predict process, alternating.
        have_fm_model = finmaas and fm["train"]
        for r in range(opts.repeat):
            res = run_peer("e2e", {"data": str(paths["full"]), "model": str(sk_model),
                                   "out": str(work / "sklearn-pred.csv")})  # fmt: skip
            sk["e2e"].append(res)
            line = f"predict {r + 1}/{opts.repeat}: sklearn end-to-end {res['seconds']:.2f} s"
            if have_fm_model and len(fm["predict"]) == r:
                got = attempt(finmaas_predict, finmaas, fm_model, paths["full"],
                              work / "finmaas-pred.csv")  # fmt: skip
                if got:
                    fm["predict"].append(got)
                    line += (f", finmaas predict process {got['wall']:.2f} s "
                             f"(model {got['predict']:.3f} s)")  # fmt: skip
            print(line, flush=True)

        # Quality on held-out data: both trained on the same 80%, scored on the same 20%.
        sk_auc = run_peer("fit", {"data": str(paths["train"]), "model": str(work / "sk80.pkl"),
                                  "epochs": opts.epochs, "test": str(paths["test"])})
        fm_auc = fm_auc_check = fm_auc_column = None
        if have_fm_model:
            m80 = work / "finmaas80.fmm"
            if attempt(finmaas_train, finmaas, paths["train"], m80, opts.epochs):
                got = attempt(finmaas_eval, finmaas, m80, paths["test"])
                fm_auc = got["auc"] if got else None
                pred_test = work / "finmaas-test-pred.csv"
                if attempt(finmaas_predict, finmaas, m80, paths["test"],
                           pred_test):  # fmt: skip
                    try:
                        fm_auc_check, fm_auc_column = auc_of_predictions(pred_test,
                                                                         paths["test"])
                    except Exception as e:  # a format we cannot read is reported, not fatal
                        fm_auc_column = f"unreadable: {e}"
        print(f"quality: sklearn test AUC {sk_auc['auc']:.4f}"
              + (f", finmaas test AUC {fm_auc:.4f}" if fm_auc is not None else "") + "\n")

        # Medians and ratios.
        n = data["rows"]
        sk_fit = median([r["fit_seconds"] for r in sk["fit"]])
        sk_fit_peak = median([r["peak_kib"] for r in sk["fit"]])
        sk_model_rate = n / median(sk_proba["seconds"])
        sk_e2e = median([r["seconds"] for r in sk["e2e"]])
        sk_e2e_rate = n / sk_e2e
        sk_e2e_peak = median([r["peak_kib"] for r in sk["e2e"]])
        fm_train = median([r["train"] for r in fm["train"]])
        fm_train_wall = median([r["wall"] for r in fm["train"]])
        fm_train_peak = median([r["peak_kib"] for r in fm["train"]])
        fm_pred = median([r["predict"] for r in fm["predict"]])
        fm_model_rate = n / median(fm_memory["seconds"]) if fm_memory else None
        fm_wall = median([r["wall"] for r in fm["predict"]])
        fm_e2e_rate = n / fm_wall if fm_wall else None
        fm_pred_peak = median([r["peak_kib"] for r in fm["predict"]])

        def sk_e2e_part(name):
            return median([r[name] for r in sk["e2e"]])

        def fm_pred_part(name):
            return median([r[name] for r in fm["predict"]])

        table = [
            ["measure (median)", "scikit-learn", "finmaas", "finmaas/sklearn"],
            ["train: fit time, CSV read excluded", fmt_seconds(sk_fit), fmt_seconds(fm_train),
             fmt_ratio(ratio(fm_train, sk_fit))],
            ["train: per epoch", fmt_seconds(sk_fit / opts.epochs),
             fmt_seconds(fm_train / opts.epochs if fm_train else None), ""],
            ["train: process wall time (sklearn: with imports)",
             fmt_seconds(median([r["wall"] for r in sk["fit"]])),
             fmt_seconds(fm_train_wall), ""],
            ["train: peak memory of the process", fmt_mib(sk_fit_peak), fmt_mib(fm_train_peak),
             fmt_ratio(ratio(fm_train_peak, sk_fit_peak))],
            ["predict: model only, in memory", fmt_rate(sk_model_rate), fmt_rate(fm_model_rate),
             fmt_ratio(ratio(fm_model_rate, sk_model_rate))],
            ["predict: end to end, CSV in and out", fmt_rate(sk_e2e_rate), fmt_rate(fm_e2e_rate),
             fmt_ratio(ratio(fm_e2e_rate, sk_e2e_rate))],
            ["predict: end-to-end time", fmt_seconds(sk_e2e), fmt_seconds(fm_wall),
             fmt_ratio(ratio(fm_wall, sk_e2e))],
            ["predict: end to end, reading CSV", fmt_seconds(sk_e2e_part("read")),
             fmt_seconds(fm_pred_part("read")), fmt_ratio(ratio(fm_pred_part("read"),
                                                                sk_e2e_part("read")))],
            ["predict: end to end, scoring", fmt_seconds(sk_e2e_part("predict")),
             fmt_seconds(fm_pred), fmt_ratio(ratio(fm_pred, sk_e2e_part("predict")))],
            ["predict: end to end, writing CSV", fmt_seconds(sk_e2e_part("write")),
             fmt_seconds(fm_pred_part("write")), fmt_ratio(ratio(fm_pred_part("write"),
                                                                 sk_e2e_part("write")))],
            ["predict: peak memory of the process", fmt_mib(sk_e2e_peak), fmt_mib(fm_pred_peak),
             fmt_ratio(ratio(fm_pred_peak, sk_e2e_peak))],
            ["quality: AUC on held-out 20%", f"{sk_auc['auc']:.4f}",
             "-" if fm_auc is None else f"{fm_auc:.4f}",
             "-" if fm_auc is None else f"{fm_auc - sk_auc['auc']:+.4f}"],
        ]  # fmt: skip
        print_table(table)
        print()
        print("notes: sklearn fit includes StandardScaler and its input validation. sklearn "
              "end to end is timed inside an already started Python\n(imports excluded; "
              "reading includes unpickling the model), finmaas end to end is the wall time of "
              "the whole process\n(its parts are the process's own --stats figures). Both "
              "write p_0,p_1,label with 9 significant digits. Memory is peak RSS\n"
              "(/usr/bin/time %M). Scoring includes standardising the features in both.")
        if fm_auc_check is not None:
            print(f"check: AUC recomputed by scikit-learn from finmaas predict's column "
                  f"'{fm_auc_column}' = {fm_auc_check:.4f} (finmaas eval said "
                  f"{'-' if fm_auc is None else f'{fm_auc:.4f}'})")  # fmt: skip
        elif fm_auc_column:
            print(f"check: could not read finmaas predictions for an AUC check: {fm_auc_column}")
        if fm_auc is not None and abs(fm_auc - sk_auc["auc"]) > AUC_TOLERANCE:
            print(f"WARNING: the test AUCs differ by more than {AUC_TOLERANCE}: the engines did "
                  "not learn the same thing, so their timings are not comparable")  # fmt: skip
        threads = [r["cpu"] / r["wall"] for r in fm["train"] + fm["predict"]]
        if threads and max(threads) > 1.2:
            print(f"WARNING: a finmaas process used {max(threads):.2f} CPU seconds per "
                  "second: not single-threaded")  # fmt: skip
        print()

        goals = []

        def goal(name, value, target, higher_is_better):
            ok = value is not None and (value >= target if higher_is_better else value <= target)
            sign = ">=" if higher_is_better else "<="
            shown = "n/a" if value is None else f"{value:.2f}"
            status = "PASS" if ok else ("SKIP" if finmaas is None else "MISS")
            goals.append({"goal": name, "value": value, "target": target, "status": status})
            print(f"{status} {name}: {shown} (goal {sign} {target})")

        goal("train time finmaas/sklearn", ratio(fm_train, sk_fit), GOAL_TRAIN_RATIO, False)
        goal("predict model-only rows/s finmaas/sklearn",
             ratio(fm_model_rate, sk_model_rate), GOAL_PREDICT_RATIO, True)  # fmt: skip
        goal("predict end-to-end rows/s finmaas/sklearn",
             ratio(fm_e2e_rate, sk_e2e_rate), GOAL_PREDICT_RATIO, True)  # fmt: skip

        results = {
            "benchmark": "train_vs_sklearn", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine, "data": data,
            "settings": {"epochs": opts.epochs, "repeat": opts.repeat, "hidden": [32, 16],
                         "activation": "relu", "optimizer": "adam", "lr": 0.001, "batch": 200,
                         "l2": 0.0001, "threads": 1,
                         "proba_repetitions": PROBA_REPETITIONS},
            "sklearn": {"fit_seconds": sk_fit, "fit_peak_kib": sk_fit_peak,
                        "predict_model_rows_per_s": sk_model_rate,
                        "predict_e2e_seconds": sk_e2e, "predict_e2e_rows_per_s": sk_e2e_rate,
                        "predict_e2e_peak_kib": sk_e2e_peak, "test_auc": sk_auc["auc"],
                        "runs": {"fit": sk["fit"], "proba": sk_proba, "e2e": sk["e2e"],
                                 "auc_fit": sk_auc}},
            "finmaas": None if not finmaas else {
                "path": finmaas, "train_seconds": fm_train, "train_peak_kib": fm_train_peak,
                "predict_model_rows_per_s": fm_model_rate, "predict_e2e_seconds": fm_wall,
                "predict_e2e_rows_per_s": fm_e2e_rate, "predict_peak_kib": fm_pred_peak,
                "test_auc": fm_auc, "test_auc_from_predictions": fm_auc_check,
                "prediction_column": fm_auc_column,
                "runs": {"train": fm["train"], "predict": fm["predict"]}},
            "ratios": {"train_time": ratio(fm_train, sk_fit),
                       "predict_model_rate": ratio(fm_model_rate, sk_model_rate),
                       "predict_e2e_rate": ratio(fm_e2e_rate, sk_e2e_rate),
                       "train_peak_memory": ratio(fm_train_peak, sk_fit_peak),
                       "predict_peak_memory": ratio(fm_pred_peak, sk_e2e_peak)},
            "goals": goals, "failures": failures,
        }  # fmt: skip
        json_path = OUT_DIR / "train_vs_sklearn.json"
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {json_path}")
        if failures:
            print(f"{len(failures)} finmaas command(s) failed; see FAILED lines above")
        return 1 if failures else 0
    finally:
        if opts.keep:
            print(f"kept the data and models in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finmaas", default=str(REPO / "build" / "finmaas"),
                        help="the finmaas executable (default: build/finmaas in the repository)")
    parser.add_argument("--no-finmaas", action="store_true",
                        help="measure the scikit-learn side only")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of each timed measurement (default 3)")
    parser.add_argument("--rows", type=int, default=200_000, help="rows (default 200000)")
    parser.add_argument("--features", type=int, default=30, help="features (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated CSV files and models under bench/out/")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--peer-args", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.peer:
        peer_main(opts.peer, json.loads(opts.peer_args))
        return 0
    if opts.epochs < 1 or opts.repeat < 1 or opts.rows < 100 or opts.features < 18:
        parser.error("need --epochs >= 1, --repeat >= 1, --rows >= 100, --features >= 18")
    try:
        return benchmark(opts)
    except CommandFailed as e:  # the scikit-learn side failed: nothing to compare against
        print(f"FAILED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
