#!/usr/bin/python3
"""Preprocessing against scikit-learn.

Runs $FM_TOOLS/data_encode on the real credit data sets (fit on all rows, every column but the
target, missing indicators on) and recomputes the same matrix independently with pandas and
scikit-learn: SimpleImputer(median) + StandardScaler for numeric columns, SimpleImputer
(most_frequent) + OneHotEncoder(handle_unknown="ignore") for categorical ones, MissingIndicator
where training data had missing values. Feature names must match exactly and every value to within
1e-9; the largest difference is printed. Exits non-zero on any failure.
"""
import csv
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TOLERANCE = 1e-9
# finmaas's missing-value tokens (src/data/data.h); pandas' own default list differs slightly.
MISSING = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A"]


def reference(path, target):
    """The encoded matrix and feature names, computed with pandas and scikit-learn."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=MISSING)
    names, blocks = [], []
    for column in frame.columns:
        if column == target:
            continue
        series = frame[column]
        missing = series.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(series):
            x = series.to_numpy(dtype=float).reshape(-1, 1)
            if missing.all():
                imputed = np.zeros_like(x)  # no median to learn: finmaas imputes 0
            else:
                imputed = SimpleImputer(strategy="median").fit_transform(x)
            blocks.append(StandardScaler().fit_transform(imputed))
            names.append(column)
        else:
            x = series.astype(object).where(~series.isna(), np.nan).to_numpy().reshape(-1, 1)
            imputer = SimpleImputer(strategy="most_frequent", missing_values=np.nan)
            imputed = imputer.fit_transform(x)
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            blocks.append(encoder.fit_transform(imputed))
            names.extend(f"{column}={category}" for category in encoder.categories_[0])
        if missing.any():
            indicator = MissingIndicator(features="missing-only", missing_values=np.nan)
            source = series.to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(series) \
                else np.where(missing, np.nan, 0.0)
            blocks.append(indicator.fit_transform(source.reshape(-1, 1)).astype(float))
            names.append(f"{column}_missing")
    return names, np.hstack(blocks)


def finmaas(tool, path, target):
    """The matrix and feature names data_encode writes."""
    result = subprocess.run([tool, path, target], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"data_encode {path} {target} failed: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    names = next(csv.reader([lines[0]]))
    values = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", ndmin=2)
    return names, values


def main():
    tools = os.environ.get("FM_TOOLS")
    shared = os.environ.get("FM_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
    if not tools:
        print("FM_TOOLS is not set (the directory holding data_encode)")
        return 1
    tool = os.path.join(tools, "data_encode")
    failures = 0
    for name, target in [("credit_data.csv", "Status"), ("credit-g.csv", "class")]:
        path = os.path.join(shared, "data", name)
        want_names, want = reference(path, target)
        got_names, got = finmaas(tool, path, target)
        if got_names != want_names:
            print(f"FAIL {name}: feature names differ\n"
                  f"  finmaas: {got_names}\n  sklearn: {want_names}")
            failures += 1
            continue
        if got.shape != want.shape:
            print(f"FAIL {name}: shape {got.shape} != {want.shape}")
            failures += 1
            continue
        diff = np.abs(got - want)
        worst = float(diff.max())
        row, col = np.unravel_index(int(diff.argmax()), diff.shape)
        status = "ok  " if worst <= TOLERANCE else "FAIL"
        print(f"{status} {name}: {got.shape[0]} rows x {got.shape[1]} features, "
              f"max |diff| = {worst:.3g} (row {row}, feature {got_names[col]})")
        failures += worst > TOLERANCE
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
