"""Shared helpers of the reference tests: run finmaas, build scikit-learn's equivalent of its
preprocessing, report comparisons. Used only by tests, never at run time."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

FINMAAS = os.environ.get("FINMAAS", "build/finmaas")
SHARED = os.environ.get("FM_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
TOOLS = os.environ.get("FM_TOOLS", "build/tests")

failures = []


def run(*args, check=True):
    """Runs finmaas with args; returns stdout. Fails the test with stderr on a non-zero exit."""
    p = subprocess.run([FINMAAS, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"finmaas {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p.stdout


def run_json(*args):
    return json.loads(run(*args))


def tempdir():
    return tempfile.mkdtemp(prefix="fm_ref_")


def check(cond, message):
    print(("ok   " if cond else "FAIL ") + message)
    if not cond:
        failures.append(message)


def finish():
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("all checks passed")


def read_csv(path):
    """Reads a CSV the way finmaas does: NA-like tokens and empty fields are missing."""
    return pd.read_csv(path, keep_default_na=False,
                       na_values=["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None",
                                  "<NA>", "#N/A"])


def sklearn_preprocessor(frame):
    """finmaas's preprocessing in scikit-learn terms: median imputation + standardisation of numeric
    columns, most-frequent imputation + one-hot encoding (unknown categories ignored) of the rest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
