"""Prediction and explanation time of this checkout against an earlier commit.

``network_speed.py`` times the network alone; this times ``predict_proba`` and
``explain`` from the pair frame on: tokenising, the similarity features, the
prior and the network. For each Magellan dataset, fit the default estimator
briefly on ``train`` (the weights do not change the cost) and save it; then, in
turns, a fresh process of each checkout (`--ref`, unpacked with ``git archive``,
and this one) loads that model and times ``predict_proba`` on the ``test`` pairs
and on ``magellan.py``'s 20,000 candidate pairs, and ``explain``
(``n_steps=50``) on the first `--explain-pairs` test pairs. The two must give
the same probabilities (within 1e-4) and attributions (within 1 % of the
largest: max-pooling and max-attentive matching are not smooth, so a rounding
difference can move the point where the integrand jumps).

Reports the median over `--rounds` processes of each process's median time,
pairs/s and the ratio now / ref: below 1 is faster. The model is saved by
this checkout, so `--ref` must read its saved-model format (format 2: a
commit since that format came in). The figures go to a JSON file
(``benchmarks/results/`` unless `--out`).

Usage::

    python benchmarks/inference_speed.py --data /work/shared/data/magellan --ref 71ca97c
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import (
    MAGELLAN_DATASETS,
    RESULTS,
    ROOT,
    Run,
    checkout,
    magellan_candidates,
    magellan_folder,
    run_in_checkout,
)


def worker(model, data, candidates, repeats, explain_pairs, out):
    """Time ``predict_proba`` and ``explain`` of the saved `model` on the pairs
    of `data`; save the probabilities and raw attributions to `out`."""
    import skrecordpair
    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    X = load_magellan(data, split="test", as_frame=True)[0]
    candidates = magellan_candidates(load_magellan(data, as_frame=True), candidates)
    clf = RecordPairClassifier.load(model)
    sample = X.iloc[:explain_pairs]
    proba = clf.predict_proba(X)  # warm-up
    candidate_proba = clf.predict_proba(candidates)
    attributions = clf.explain(sample)["raw_attribution"].to_numpy()
    seconds = {"predict": [], "candidates": [], "explain": []}
    for _ in range(repeats):
        for task, func, rows in (
            ("predict", clf.predict_proba, X),
            ("candidates", clf.predict_proba, candidates),
            ("explain", clf.explain, sample),
        ):
            start = time.perf_counter()
            func(rows)
            seconds[task].append(time.perf_counter() - start)
    np.savez(
        out, proba=proba, candidate_proba=candidate_proba, attributions=attributions
    )
    print(json.dumps({"seconds": seconds, "package": skrecordpair.__file__}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="the commit to compare with (required)")
    parser.add_argument(
        "--data",
        type=Path,
        help="the folder holding the ER-Magellan data set folders (required)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="a .json file, or a folder (default: benchmarks/results)",
    )
    parser.add_argument(
        "--datasets", nargs="+", default=MAGELLAN_DATASETS, choices=MAGELLAN_DATASETS
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=20_000,
        help="candidate pairs, as in magellan.py",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="processes per checkout, in turns"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed predictions and explanations per process",
    )
    parser.add_argument("--explain-pairs", type=int, default=200)
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        model, data, candidates, repeats, explain_pairs, out = args.worker
        worker(model, data, int(candidates), int(repeats), int(explain_pairs), out)
        return
    for option in ("ref", "data"):
        if getattr(args, option) is None:
            parser.error(f"--{option} is required")

    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    run = Run("inference_speed", args, argv)
    work = Path(tempfile.mkdtemp())
    roots = {args.ref: checkout(args.ref, work / "ref"), "now": ROOT}
    for name in args.datasets:
        folder = magellan_folder(args.data, name)
        data = load_magellan(folder, as_frame=True)
        clf = RecordPairClassifier(random_state=0, max_epochs=2)
        clf.fit(*data.train, validation_data=data.valid)
        model = work / f"{name}.model"
        clf.save(model)
        reports = {label: [] for label in roots}
        for _ in range(args.rounds):
            for label, root in roots.items():
                reports[label].append(
                    run_in_checkout(
                        root,
                        __file__,
                        model,
                        folder,
                        args.candidates,
                        args.repeats,
                        args.explain_pairs,
                        work / f"{label}.npz",
                    )
                )
        outputs = {label: np.load(work / f"{label}.npz") for label in roots}
        n_test = len(data.test[0])
        n_candidates = len(outputs["now"]["candidate_proba"])
        rows = run.results[name] = []
        for task, key, array, n in (
            ("predict_proba", "predict", "proba", n_test),
            (
                "predict_proba, candidates",
                "candidates",
                "candidate_proba",
                n_candidates,
            ),
            ("explain", "explain", "attributions", min(n_test, args.explain_pairs)),
        ):
            reference = outputs[args.ref][array]
            difference = float(np.abs(reference - outputs["now"][array]).max())
            tolerance = 1e-2 * np.abs(reference).max() if key == "explain" else 1e-4
            if difference > tolerance:
                raise AssertionError(
                    f"{name} {task}: the outputs differ by {difference:.2g}"
                )
            # Per process, the median of its calls; then the median of processes.
            seconds = {
                label: [float(np.median(r["seconds"][key])) for r in reports[label]]
                for label in roots
            }
            old, new = (float(np.median(seconds[label])) for label in roots)
            rows.append(
                {
                    "task": task,
                    "pairs": n,
                    "ref_seconds": old,
                    "now_seconds": new,
                    "ratio": new / old,
                    "ref_pairs_per_second": n / old,
                    "now_pairs_per_second": n / new,
                    "max_abs_difference": difference,
                    "calls": {
                        ("ref" if label == args.ref else label): [
                            r["seconds"][key] for r in reports[label]
                        ]
                        for label in roots
                    },
                }
            )
            print(
                f"{name} {task}, {n:,} pairs: {old:.3f} s at {args.ref}, {new:.3f} s "
                f"now ({new / old:.2f}); outputs within {difference:.1g}",
                flush=True,
            )
    run.write()


if __name__ == "__main__":
    main()
