"""The quality bar of the core issue, on real data: a 70/30 stratified split of credit_data.csv
(target Status, positive bad) and of credit-g.csv (target class, positive bad), made by
scikit-learn's train_test_split(test_size=0.3, stratify=y, random_state=42), the split on which
scikit-learn reaches the AUCs the issue quotes. finmaas must reach the AUC floors; scikit-learn's
figures on the very same files are printed beside ours. The AUC that `finmaas eval` reports is
also recomputed from `finmaas predict` output with sklearn. `finmaas split` is checked to keep
the class proportions."""
import os

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline

import fmref

work = fmref.tempdir()


def split(name, target):
    src = os.path.join(fmref.SHARED, "data", name)
    frame = fmref.read_csv(src)
    y = (frame[target] == "bad").astype(int)
    a, b = train_test_split(frame, test_size=0.3, stratify=y, random_state=42)
    train, test = os.path.join(work, f"train-{name}"), os.path.join(work, f"test-{name}")
    a.to_csv(train, index=False, na_rep="NA")
    b.to_csv(test, index=False, na_rep="NA")
    # finmaas's own split keeps the class shares too.
    ours_a, ours_b = os.path.join(work, f"a-{name}"), os.path.join(work, f"b-{name}")
    fmref.run("split", "--data", src, "--stratify", target, "--test-fraction", 0.3, "--seed", 42,
              "--train-out", ours_a, "--test-out", ours_b)
    share = (frame[target] == "bad").mean()
    parts = [fmref.read_csv(p) for p in (ours_a, ours_b)]
    fmref.check(sum(len(p) for p in parts) == len(frame) and
                abs(len(parts[1]) - 0.3 * len(frame)) <= 2 and
                all(abs((p[target] == "bad").mean() - share) < 0.002 for p in parts),
                f"finmaas split of {name}: {len(parts[0])} + {len(parts[1])} rows, bad share "
                f"{share:.4f} kept in both")
    return train, test


def finmaas_auc(train, test, target, tag, extra):
    model = os.path.join(work, f"{tag}.fmm")
    fmref.run("train", "--data", train, "--target", target, "--positive", "bad", "--quiet",
              "--out", model, *extra)
    report = fmref.run_json("eval", "--model", model, "--data", test)
    out = os.path.join(work, f"{tag}.csv")
    fmref.run("predict", "--model", model, "--data", test, "--out", out)
    truth = (fmref.read_csv(test)[target] == "bad").astype(int)
    recomputed = roc_auc_score(truth, fmref.pd.read_csv(out)["p_bad"])
    fmref.check(abs(recomputed - report["auc"]) < 1e-6,
                f"{tag}: eval AUC {report['auc']:.6f} = sklearn on predict output {recomputed:.6f}")
    return report["auc"]


def sklearn_auc(train, test, target, estimator):
    a, b = fmref.read_csv(train), fmref.read_csv(test)
    X, y = a.drop(columns=[target]), (a[target] == "bad").astype(int)
    pipe = make_pipeline(fmref.sklearn_preprocessor(X), estimator).fit(X, y)
    return roc_auc_score((b[target] == "bad").astype(int),
                         pipe.predict_proba(b.drop(columns=[target]))[:, 1])


train, test = split("credit_data.csv", "Status")
logistic = finmaas_auc(train, test, "Status", "credit-logistic", ["--model", "logistic"])
mlp = finmaas_auc(train, test, "Status", "credit-mlp",
                  ["--model", "mlp", "--hidden", "32,16", "--optimizer", "adam"])
sk_logistic = sklearn_auc(train, test, "Status", LogisticRegression(max_iter=2000))
sk_mlp = sklearn_auc(train, test, "Status",
                     MLPClassifier((32, 16), early_stopping=True, max_iter=500, random_state=0))
print(f"credit_data test AUC: finmaas logistic {logistic:.4f} (sklearn {sk_logistic:.4f}), "
      f"finmaas MLP {mlp:.4f} (sklearn {sk_mlp:.4f})")
fmref.check(logistic >= 0.835, f"credit_data logistic AUC {logistic:.4f} >= 0.835")
fmref.check(mlp >= 0.835, f"credit_data Adam MLP AUC {mlp:.4f} >= 0.835")

train, test = split("credit-g.csv", "class")
german = finmaas_auc(train, test, "class", "german-logistic", ["--model", "logistic"])
sk_german = sklearn_auc(train, test, "class", LogisticRegression(max_iter=2000))
print(f"credit-g test AUC: finmaas logistic {german:.4f} (sklearn {sk_german:.4f})")
fmref.check(german >= 0.78, f"credit-g logistic AUC {german:.4f} >= 0.78")

fmref.finish()
