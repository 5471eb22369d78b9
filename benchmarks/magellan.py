"""Accuracy and speed on the ER-Magellan benchmarks, beside the classic matcher.

For each dataset folder: fit ``RecordPairClassifier`` on ``train`` (the ``valid``
split only for early stopping and the decision threshold), and in the same run the
classic matcher (``SimilarityFeatures`` + ``HistGradientBoostingClassifier``,
threshold chosen on ``valid``). Report test precision/recall/F1 as mean ± sd over
seeds, fit seconds, predict and explain pairs/s, and write ``RESULTS.md``. Nothing
is chosen on the test split.

Usage::

    python benchmarks/magellan.py                      # all six, seeds 0 1 2
    python benchmarks/magellan.py --datasets beer --seeds 0 --out /tmp/r.md
"""

from __future__ import annotations

import argparse
import ast
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_recall_fscore_support
from sklearn.pipeline import make_pipeline

import skrecordpair
from skrecordpair import RecordPairClassifier, SimilarityFeatures
from skrecordpair._classifier import best_f1_threshold
from skrecordpair.datasets import load_magellan
from skrecordpair.presets import BIOME_TEXT

from scoring_memory import resampled_pair_frame  # this folder's scaling benchmark

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "magellan"
DATASETS = ["amazon_google", "dblp_acm", "walmart_amazon", "abt_buy", "beer",
            "fodors_zagats"]
# Candidate pairs scored for the throughput column: on the small test splits
# (91 and 189 pairs) one call is mostly fixed cost.
CANDIDATE_PAIRS = 20_000
# Timed calls per figure, of which the median counts: this kind of shared
# machine varies by a fifth and more from one call to the next.
REPEATS = 5
# Pairs of the test split that explain is timed on.
EXPLAIN_PAIRS = 200
# Published test F1: DeepMatcher Hybrid, Ditto.
PUBLISHED = {"amazon_google": (69.3, 75.6), "dblp_acm": (98.4, 99.0),
             "walmart_amazon": (66.9, 86.8), "abt_buy": (62.8, 89.3),
             "beer": (72.7, 94.4), "fodors_zagats": (100.0, 100.0)}


def prf(y_true, y_pred):
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary",
                                                 zero_division=0)
    return 100 * p, 100 * r, 100 * f


def pairs_per_second(func, X, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(X)
        times.append(time.perf_counter() - start)
    return len(X) / np.median(times)


def candidate_pairs(data):
    """`CANDIDATE_PAIRS` pairs of a tableA and a tableB record drawn at random."""
    # The tables are indexed by id: their columns are the fields.
    return resampled_pair_frame(data.left_table, data.right_table, CANDIDATE_PAIRS)


def run_network(data, seed, params):
    X, y = data.train
    clf = RecordPairClassifier(random_state=seed, decision_threshold="auto", **params)
    start = time.perf_counter()
    clf.fit(X, y, validation_data=data.valid)
    fit_seconds = time.perf_counter() - start
    X_valid, y_valid = data.valid
    valid_f1 = prf(y_valid, clf.predict(X_valid))[2]
    X_test, y_test = data.test
    scores = prf(y_test, clf.predict(X_test))
    predict_rate = pairs_per_second(clf.predict_proba, X_test)
    candidate_rate = pairs_per_second(clf.predict_proba, candidate_pairs(data))
    explain_rate = pairs_per_second(clf.explain, X_test.iloc[:EXPLAIN_PAIRS])
    return (scores, fit_seconds, predict_rate, explain_rate, len(clf.net_.history_),
            valid_f1, candidate_rate)


def run_classic(data, seed):
    X, y = data.train
    model = make_pipeline(SimilarityFeatures(),
                          HistGradientBoostingClassifier(random_state=seed))
    start = time.perf_counter()
    model.fit(X, y)
    X_valid, y_valid = data.valid
    valid_scores = model.predict_proba(X_valid)[:, 1]
    threshold = best_f1_threshold(y_valid, valid_scores)
    fit_seconds = time.perf_counter() - start
    valid_f1 = prf(y_valid, (valid_scores > threshold).astype(int))[2]
    X_test, y_test = data.test
    scores = prf(y_test, (model.predict_proba(X_test)[:, 1] > threshold).astype(int))
    rate = pairs_per_second(model.predict_proba, X_test)
    candidate_rate = pairs_per_second(model.predict_proba, candidate_pairs(data))
    return scores, fit_seconds, rate, valid_f1, candidate_rate


def mean_sd(values):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.1f} ± {values.std():.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--preset", choices=["default", "biome"], default="default",
                        help="'biome' is the faithful biome.text configuration")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override hyperparameters (Python literals), to compare")
    args = parser.parse_args(argv)
    params = {} if args.preset == "default" else dict(BIOME_TEXT)
    params.update((k, ast.literal_eval(v)) for k, v in (kv.split("=", 1) for kv in args.set))
    rows = []
    for name in args.datasets:
        data = load_magellan(args.data / name, as_frame=True)
        net, classic = [], []
        for seed in args.seeds:
            net.append(run_network(data, seed, params))
            classic.append(run_classic(data, seed))
            print(name, seed, "network P/R/F1 %.1f/%.1f/%.1f" % net[-1][0],
                  "fit %.0fs, %d epochs, predict %.0f/s (candidates %.0f/s), "
                  "explain %.0f/s"
                  % (net[-1][1], net[-1][4], net[-1][2], net[-1][6], net[-1][3]),
                  "| classic F1 %.1f | valid F1 %.1f, classic %.1f"
                  % (classic[-1][0][2], net[-1][5], classic[-1][3]), flush=True)
        f1 = [r[0][2] for r in net]
        classic_f1 = [r[0][2] for r in classic]
        rows.append({
            "dataset": name,
            "precision": mean_sd([r[0][0] for r in net]),
            "recall": mean_sd([r[0][1] for r in net]),
            "F1": mean_sd(f1),
            "classic F1": mean_sd(classic_f1),
            "F1 ratio": f"{np.mean(f1) / max(np.mean(classic_f1), 1e-9):.2f}",
            "DeepMatcher / Ditto": "%.1f / %.1f" % PUBLISHED[name],
            "valid F1": mean_sd([r[5] for r in net]),
            "classic valid F1": mean_sd([r[3] for r in classic]),
            "fit s": f"{np.median([r[1] for r in net]):.0f}",
            "classic fit s": f"{np.median([r[1] for r in classic]):.1f}",
            "predict pairs/s": f"{np.median([r[2] for r in net]):,.0f}",
            "classic pairs/s": f"{np.median([r[2] for r in classic]):,.0f}",
            "candidates pairs/s": f"{np.median([r[6] for r in net]):,.0f}",
            "classic candidates pairs/s": f"{np.median([r[4] for r in classic]):,.0f}",
            "explain pairs/s": f"{np.median([r[3] for r in net]):,.0f}",
        })
    write_results(args, rows)


def write_results(args, rows):
    header = list(rows[0])
    lines = [
        "# ER-Magellan benchmark results",
        "",
        f"`python benchmarks/magellan.py --preset {args.preset} --seeds "
        f"{' '.join(map(str, args.seeds))}"
        + (f" --set {' '.join(args.set)}" if args.set else "")
        + "` — test split, F1 in %, mean ± sd over "
        f"{len(args.seeds)} seed(s). The network's threshold and early stopping use "
        "the `valid` split; so does the classic matcher's threshold. The valid F1 "
        "columns are what choices are made on. *predict pairs/s* times one "
        "`predict_proba` call on the test split; *candidates pairs/s* one call on "
        f"{CANDIDATE_PAIRS:,} pairs of a tableA and a tableB record drawn at random "
        "(the scoring after blocking); *explain pairs/s* one `explain` call "
        f"(n_steps=50) on the first {EXPLAIN_PAIRS} test pairs; each the median of "
        f"{REPEATS} calls.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    lines += [
        "",
        f"Machine: {platform.platform()}, {torch.get_num_threads()} torch threads, "
        f"Python {platform.python_version()}; skrecordpair {skrecordpair.__version__}, "
        f"torch {torch.__version__}, skorch {skorch.__version__}, scikit-learn "
        f"{sklearn.__version__}.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
