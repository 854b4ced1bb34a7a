"""The whole training pipeline (preprocessing, loss, gradients, optimiser, prediction) against
scikit-learn: with full-batch gradient descent run to convergence, finmaas's regularised logistic,
softmax and linear regressions have the same unique optimum as scikit-learn's LogisticRegression
and Ridge on the same features, so their predictions must agree closely.

finmaas minimises mean_loss + (l2 / 2) * ||W||^2 (biases unpenalised). In scikit-learn terms:
LogisticRegression(C = 1 / (l2 * n)); for regression finmaas standardises the target, which makes
its optimum Ridge(alpha = n * l2 / 2)."""
import os

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline

import fmref

data = os.path.join(fmref.SHARED, "data", "credit_data.csv")
frame = fmref.read_csv(data)
work = fmref.tempdir()
l2 = 0.05


def finmaas_predictions(target, extra):
    model = os.path.join(work, f"{target}.fmm")
    out = os.path.join(work, f"{target}.csv")
    fmref.run("train", "--data", data, "--target", target, "--optimizer", "gd",
              "--valid-fraction", 0, "--l2", l2, "--quiet", "--out", model, *extra)
    fmref.run("predict", "--model", model, "--data", data, "--out", out)
    return fmref.pd.read_csv(out, keep_default_na=False)


# Binary: P(Status = bad).
X = frame.drop(columns=["Status"])
y = (frame["Status"] == "bad").astype(int)
ours = finmaas_predictions("Status", ["--positive", "bad", "--lr", "1.0", "--epochs", "4000"])
sk = make_pipeline(fmref.sklearn_preprocessor(X),
                   LogisticRegression(C=1.0 / (l2 * len(X)), tol=1e-12, max_iter=10000))
p_sk = sk.fit(X, y).predict_proba(X)[:, 1]
diff = np.max(np.abs(ours["p_bad"].to_numpy() - p_sk))
fmref.check(diff < 2e-4, f"logistic regression vs sklearn: max |p diff| = {diff:.2e}")
fmref.check((ours["label"] == np.where(p_sk >= 0.5, "bad", "good")).mean() > 0.999,
            "logistic regression labels agree")

# Multiclass: Marital status from the other columns.
rows = frame["Marital"].notna()
X = frame.loc[rows].drop(columns=["Marital", "Status"])
y = frame.loc[rows, "Marital"]
ours = finmaas_predictions("Marital", ["--drop", "Status", "--lr", "1.0", "--epochs", "4000"])
ours = ours.loc[rows.to_numpy()]
sk = make_pipeline(fmref.sklearn_preprocessor(X),
                   LogisticRegression(C=1.0 / (l2 * len(X)), tol=1e-12, max_iter=10000))
prob = sk.fit(X, y).predict_proba(X)
classes = list(sk.classes_)
mine = ours[[f"p_{c}" for c in classes]].to_numpy()
diff = np.max(np.abs(mine - prob))
fmref.check(diff < 5e-4, f"softmax regression vs sklearn multinomial: max |p diff| = {diff:.2e}")

# Regression: loan amount.
rows = frame["Amount"].notna()
X = frame.loc[rows].drop(columns=["Amount"])
y = frame.loc[rows, "Amount"].to_numpy(dtype=float)
ours = finmaas_predictions("Amount", ["--lr", "0.1", "--epochs", "6000"])
ours = ours.loc[rows.to_numpy()]
sk = make_pipeline(fmref.sklearn_preprocessor(X), Ridge(alpha=len(X) * l2 / 2))
pred = sk.fit(X, y).predict(X)
diff = np.max(np.abs(ours["prediction"].to_numpy() - pred)) / np.std(y)
fmref.check(diff < 1e-4, f"linear regression vs sklearn Ridge: max |diff| / sd(y) = {diff:.2e}")

fmref.finish()
