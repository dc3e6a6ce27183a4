"""make_metric_fixtures - inputs and scikit-learn's answers for din's metric aggregates.

    /usr/bin/python3 test/reference/make_metric_fixtures.py

Writes test/fixtures/metrics/cases.csv (case, user_id, score, label: the rows each case
aggregates) and test/fixtures/metrics/expected.csv (case, rows, auc, gauc, gauc_clicks,
logloss; an empty field is SQL NULL). auc is scikit-learn's roc_auc_score, logloss its
log_loss with eps=1e-15; gauc is computed user by user from roc_auc_score: the mean of each
user's AUC weighted by impressions (gauc) or clicks (gauc_clicks), over users with both
classes. Deterministic: the same files on every run. The regression test
test/sql/metric_fixtures.sql reads both files; CI never runs this script.
"""

import csv
import os

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "metrics")


def case_random(rng):
    """Continuous scores, 40 users including negative and huge ids."""
    n = 1500
    users = rng.choice([-(2**62), -7, 0, 1, 2**40, 2**62] + list(range(100, 134)), size=n)
    score = np.round(rng.random(n), 9)
    label = (rng.random(n) < 0.2 + 0.6 * score).astype(int)
    return users, score, label


def case_heavy_ties(rng):
    """11 distinct scores over 2000 rows, labels correlated with them."""
    n = 2000
    score = np.round(rng.random(n), 1)
    label = (rng.random(n) < 0.1 + 0.8 * score).astype(int)
    users = rng.integers(1, 60, size=n)
    return users, score, label


def case_all_equal(rng):
    """Every score equal: AUC one half for the whole set and for every user."""
    n = 400
    label = (rng.random(n) < 0.5).astype(int)
    return rng.integers(1, 20, size=n), np.full(n, 0.5), label


def case_single_class_pos(rng):
    n = 30
    return rng.integers(1, 5, size=n), np.round(rng.random(n), 6), np.ones(n, dtype=int)


def case_single_class_neg(rng):
    n = 30
    return rng.integers(1, 5, size=n), np.round(rng.random(n), 6), np.zeros(n, dtype=int)


def case_one_user(rng):
    """One user: GAUC equals AUC."""
    n = 800
    score = np.round(rng.random(n), 4)
    label = (rng.random(n) < score).astype(int)
    return np.full(n, 7), score, label


def case_many_users_few(rng):
    """3000 users with 1 to 4 impressions each: most users are skipped by GAUC."""
    counts = rng.integers(1, 5, size=3000)
    users = np.repeat(np.arange(1, 3001) * 1000003, counts)
    rng.shuffle(users)
    n = len(users)
    score = np.round(rng.random(n), 3)
    label = (rng.random(n) < 0.4).astype(int)
    return users, score, label


def case_logits(rng):
    """Unbounded scores (AUC only): signs, huge magnitudes, and -0.0 tied with 0.0."""
    n = 300
    score = np.round(rng.normal(0.0, 5.0, size=n), 3)
    score[:20] = [0.0, -0.0, 0.0, -0.0, 1e300, -1e300, 1e-300, -1e-300, 5e-324, -5e-324,
                  0.0, -0.0, 1e300, -1e300, 2.5, -2.5, 2.5, -2.5, 0.0, -0.0]
    label = (rng.random(n) < 0.5).astype(int)
    label[:4] = [1, 0, 0, 1]
    return rng.integers(1, 10, size=n), score, label


def case_extreme_probs(rng):
    """Probabilities at and beyond the clipping bounds, with both labels."""
    values = [0.0, 1.0, 1e-20, 1e-16, 1e-15, 1 - 1e-16, 1 - 1e-15, 0.5, 1e-300, 0.999999]
    score = np.array(values * 2)
    label = np.array([0] * len(values) + [1] * len(values))
    return np.full(len(score), 3), score, label


CASES = [
    ("all_equal", case_all_equal, True),
    ("extreme_probs", case_extreme_probs, True),
    ("heavy_ties", case_heavy_ties, True),
    ("logits", case_logits, False),
    ("many_users_few", case_many_users_few, True),
    ("one_user", case_one_user, True),
    ("random", case_random, True),
    ("single_class_neg", case_single_class_neg, True),
    ("single_class_pos", case_single_class_pos, True),
]


def both_classes(label):
    return 0 < label.sum() < len(label)


def gauc(users, score, label, by_clicks):
    num = den = 0.0
    for u in np.unique(users):
        m = users == u
        if not both_classes(label[m]):
            continue
        w = float(label[m].sum()) if by_clicks else float(m.sum())
        num += w * roc_auc_score(label[m], score[m])
        den += w
    return num / den if den > 0 else None


def fmt(x):
    return "" if x is None else repr(float(x))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240503)
    with open(os.path.join(OUT, "cases.csv"), "w", newline="") as fc, open(
        os.path.join(OUT, "expected.csv"), "w", newline=""
    ) as fe:
        rows = csv.writer(fc, lineterminator="\n")
        expected = csv.writer(fe, lineterminator="\n")
        rows.writerow(["case_name", "user_id", "score", "label"])
        expected.writerow(["case_name", "rows", "auc", "gauc", "gauc_clicks", "logloss"])
        for name, make, probabilities in CASES:
            users, score, label = make(rng)
            score = score.astype(np.float64)
            for u, s, l in zip(users, score, label):
                rows.writerow([name, int(u), repr(float(s)), int(l)])
            auc = roc_auc_score(label, score) if both_classes(label) else None
            loss = log_loss(label, score, eps=1e-15, labels=[0, 1]) if probabilities else None
            expected.writerow(
                [name, len(label), fmt(auc), fmt(gauc(users, score, label, False)),
                 fmt(gauc(users, score, label, True)), fmt(loss)]
            )


if __name__ == "__main__":
    main()
