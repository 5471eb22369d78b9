"""Where a decision threshold can come from, and what each costs in test F1.

The Magellan benchmark's default row chooses its threshold on the ``valid``
split; a user who calls ``fit(X, y)`` has only the training pairs. This script
takes the similarity model (``SimilarityFeatures`` +
``HistGradientBoostingClassifier``, the network's prior, fitted on the whole
``train`` split) and measures its test F1 with the threshold from each
source:

``0.5``
    The most probable class.
``out-of-fold``
    The best-F1 threshold of 5-fold out-of-fold predictions on the training
    pairs, once per fold seed (`--fold-seeds`): what the training pairs alone
    can tell.
``valid``
    The best-F1 threshold on the ``valid`` split.

Nothing is chosen on the test split.

Usage::

    python benchmarks/threshold_sources.py --data /path/to/magellan
"""

from __future__ import annotations

import argparse

import numpy as np
from _bench import Run, add_arguments, magellan_folder
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from skrecordpair import SimilarityFeatures, best_f1_threshold, pair_frame
from skrecordpair.datasets import load_magellan

DATASETS = [
    "beer",
    "fodors_zagats",
    "amazon_google",
    "abt_buy",
    "walmart_amazon",
    "dblp_acm",
]


def thresholds(folder, fold_seeds):
    bunch = load_magellan(folder)
    (X, y), (X_valid, y_valid), (X_test, y_test) = (
        (pair_frame(*split[:2]), np.asarray(split[2]))
        for split in (bunch.train, bunch.valid, bunch.test)
    )
    features = SimilarityFeatures().fit(X)
    F = features.transform(X)
    model = HistGradientBoostingClassifier(random_state=0).fit(F, y)
    test = model.predict_proba(features.transform(X_test))[:, 1]
    valid = model.predict_proba(features.transform(X_valid))[:, 1]

    def scored(threshold):
        return {
            "threshold": float(threshold),
            "f1": float(f1_score(y_test, test > threshold)),
        }

    out_of_fold = []
    for seed in fold_seeds:
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        oof = cross_val_predict(
            HistGradientBoostingClassifier(random_state=0),
            F,
            y,
            cv=folds,
            method="predict_proba",
        )[:, 1]
        out_of_fold.append({"fold_seed": seed, **scored(best_f1_threshold(y, oof))})
    return {
        "train_pairs": len(y),
        "train_matches": int(y.sum()),
        "0.5": scored(0.5),
        "out_of_fold": out_of_fold,
        "valid": scored(best_f1_threshold(y_valid, valid)),
    }


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--fold-seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    run = Run("threshold_sources", args, argv)
    for name in args.datasets:
        result = thresholds(magellan_folder(args.data, name), args.fold_seeds)
        run.results[name] = result
        oof = ", ".join(
            f"{100 * r['f1']:.1f} (t {r['threshold']:.3f})"
            for r in result["out_of_fold"]
        )
        print(
            f"{name}: 0.5 {100 * result['0.5']['f1']:.1f}; out-of-fold {oof}; "
            f"valid {100 * result['valid']['f1']:.1f} "
            f"(t {result['valid']['threshold']:.3f})",
            flush=True,
        )
        path = run.write()
    print(f"done: {path}")


if __name__ == "__main__":
    main()
