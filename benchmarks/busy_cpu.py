"""Fit and predict_proba time of the default model on a quiet and on a busy CPU.

On a laptop the cores are shared with other programs. The default
``RecordPairClassifier`` is fitted on walmart_amazon's ``train`` split (or a
subsample) and scores its ``test`` split, with two thread settings:

``new default``
    ``n_jobs=None``: one thread for the network, the gradient boosting and
    the string comparisons.
``old behaviour``
    ``n_jobs`` = the number of cores (``--old-threads``), the threads that
    torch and scikit-learn's OpenMP took by default before ``n_jobs`` existed.

each in two conditions:

``quiet``
    Nothing else runs (as far as this script knows: run it on an idle machine).
``busy``
    One other process spins a pure-Python loop, pinned to the first core
    (where ``os.sched_setaffinity`` exists), as a browser tab or another
    program would.

Within a condition the settings are timed in turns (``--repeats`` rounds, the
medians are the figures to quote), so that drifts in the machine's load hit
them alike. The test probabilities of the two settings are compared too (same
seed, so they should agree to float rounding).

Usage::

    python benchmarks/busy_cpu.py --data /work/shared/data/magellan

A check that it runs (a minute or two)::

    python benchmarks/busy_cpu.py --data /work/shared/data/magellan \\
        --train-pairs 300 --test-pairs 200 --max-epochs 1 --repeats 1 --out /tmp/results
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
from _bench import Run, add_arguments, magellan_folder, rates
from joblib import cpu_count
from sklearn.metrics import f1_score

from skrecordpair import RecordPairClassifier, pair_frame
from skrecordpair.datasets import load_magellan


def spin(core):
    """Busy-loop forever on `core` (when pinning is possible)."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    x = 0
    while True:
        x += 1


class BusyCore:
    """A process spinning on one core for the duration of a ``with`` block."""

    def __init__(self, core):
        self.core = core

    def __enter__(self):
        self.process = multiprocessing.get_context("spawn").Process(
            target=spin, args=(self.core,), daemon=True
        )
        self.process.start()
        time.sleep(1.0)  # let it start spinning
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.join()
        return False


def split(bunch, name, n, seed):
    """The pair frame and labels of a split, or of a random subsample of `n`
    of its pairs."""
    left, right, y = getattr(bunch, name)
    X, y = pair_frame(left, right), np.asarray(y)
    if n is not None and n < len(y):
        keep = np.sort(np.random.default_rng(seed).choice(len(y), n, replace=False))
        X, y = X.iloc[keep], y[keep]
    return X, y


def measure(settings, X, y, X_test, y_test, repeats, max_epochs):
    """Fit and predict_proba seconds of each setting (name -> n_jobs), in turns."""
    seconds = {name: {"fit": [], "predict_proba": []} for name in settings}
    proba, f1 = {}, {}
    for _ in range(repeats):
        for name, n_jobs in settings.items():
            params = {"random_state": 0, "n_jobs": n_jobs}
            if max_epochs is not None:
                params["max_epochs"] = max_epochs
            clf = RecordPairClassifier(**params)
            start = time.perf_counter()
            clf.fit(X, y)
            seconds[name]["fit"].append(time.perf_counter() - start)
            start = time.perf_counter()
            proba[name] = clf.predict_proba(X_test)
            seconds[name]["predict_proba"].append(time.perf_counter() - start)
            f1[name] = float(f1_score(y_test, clf.predict(X_test)))
            print(
                f"  {name} (n_jobs={n_jobs}): fit {seconds[name]['fit'][-1]:.1f} s, "
                f"predict_proba {seconds[name]['predict_proba'][-1]:.2f} s, "
                f"test F1 {100 * f1[name]:.1f}",
                flush=True,
            )
    out = {
        name: {
            "n_jobs": settings[name],
            "test_f1": f1[name],
            "fit": rates(len(y), seconds[name]["fit"]),
            "predict_proba": rates(len(y_test), seconds[name]["predict_proba"]),
        }
        for name in settings
    }
    names = list(settings)
    out["max_abs_proba_difference"] = float(
        np.abs(proba[names[0]] - proba[names[1]]).max()
    )
    return out


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--dataset", default="walmart_amazon")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--train-pairs",
        type=int,
        default=None,
        help="fit on a random subsample of this many train pairs (default: all)",
    )
    parser.add_argument(
        "--test-pairs",
        type=int,
        default=None,
        help="score a random subsample of this many test pairs (default: all)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="default: the estimator's"
    )
    parser.add_argument(
        "--old-threads",
        type=int,
        default=cpu_count(),
        help="n_jobs of the old behaviour (default: the cores, "
        "torch's and OpenMP's default before n_jobs)",
    )
    parser.add_argument(
        "--conditions", nargs="+", default=["quiet", "busy"], choices=["quiet", "busy"]
    )
    parser.add_argument(
        "--busy-core",
        type=int,
        default=0,
        help="the core the busy process is pinned to",
    )
    args = parser.parse_args(argv)
    run = Run("busy_cpu", args, argv)
    bunch = load_magellan(magellan_folder(args.data, args.dataset))
    X, y = split(bunch, "train", args.train_pairs, seed=0)
    X_test, y_test = split(bunch, "test", args.test_pairs, seed=1)
    settings = {"new default": None, "old behaviour": args.old_threads}
    run.results.update(dataset=args.dataset, train_pairs=len(y), test_pairs=len(y_test))
    for condition in args.conditions:
        print(f"{condition}:", flush=True)
        busy = BusyCore(args.busy_core) if condition == "busy" else None
        if busy is None:
            result = measure(
                settings, X, y, X_test, y_test, args.repeats, args.max_epochs
            )
        else:
            with busy:
                result = measure(
                    settings, X, y, X_test, y_test, args.repeats, args.max_epochs
                )
        run.results[condition] = result
        new, old = result["new default"], result["old behaviour"]
        print(
            f"{condition}: median fit {new['fit']['median_seconds']:.1f} s (new) vs "
            f"{old['fit']['median_seconds']:.1f} s (old); predict_proba "
            f"{new['predict_proba']['median_seconds']:.2f} s vs "
            f"{old['predict_proba']['median_seconds']:.2f} s",
            flush=True,
        )
        path = run.write()
    print(f"done: {path}")


if __name__ == "__main__":
    main()
