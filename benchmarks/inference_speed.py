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
pairs/s and the ratio now / ref: below 1 is faster.

Usage::

    python benchmarks/inference_speed.py --ref 71ca97c
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

# This folder's benchmark: the same data sets and candidate pairs.
from magellan import DATA, DATASETS, candidate_pairs

ROOT = Path(__file__).resolve().parents[1]


def checkout(ref, into):
    """The package of commit `ref`, unpacked under `into`."""
    archive = subprocess.run(["git", "archive", ref, "skrecordpair"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def worker(model, data, repeats, explain_pairs, out):
    """Time ``predict_proba`` and ``explain`` of the saved `model` on the pairs
    of `data`; save the probabilities and raw attributions to `out`."""
    import skrecordpair
    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    X = load_magellan(data, split="test", as_frame=True)[0]
    candidates = candidate_pairs(load_magellan(data, as_frame=True))
    clf = RecordPairClassifier.load(model)
    sample = X.iloc[:explain_pairs]
    proba = clf.predict_proba(X)  # warm-up
    candidate_proba = clf.predict_proba(candidates)
    attributions = clf.explain(sample)["raw_attribution"].to_numpy()
    seconds = {"predict": [], "candidates": [], "explain": []}
    for _ in range(repeats):
        for task, func, rows in (("predict", clf.predict_proba, X),
                                 ("candidates", clf.predict_proba, candidates),
                                 ("explain", clf.explain, sample)):
            start = time.perf_counter()
            func(rows)
            seconds[task].append(time.perf_counter() - start)
    np.savez(out, proba=proba, candidate_proba=candidate_proba,
             attributions=attributions)
    print(json.dumps({**{task: float(np.median(t)) for task, t in seconds.items()},
                      "package": skrecordpair.__file__}))


def run_worker(root, model, data, repeats, explain_pairs, out):
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run(
        [sys.executable, __file__, "--worker", str(model), str(data), str(repeats),
         str(explain_pairs), str(out)], env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the worker in {root} failed:\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if not report["package"].startswith(str(root)):
        raise RuntimeError(f"the worker imported {report['package']}, not {root}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="the commit to compare with (required)")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per checkout, in turns")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed predictions and explanations per process")
    parser.add_argument("--explain-pairs", type=int, default=200)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        model, data, repeats, explain_pairs, out = args.worker
        worker(model, data, int(repeats), int(explain_pairs), out)
        return
    if args.ref is None:
        parser.error("--ref is required")

    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    work = Path(tempfile.mkdtemp())
    roots = {args.ref: checkout(args.ref, work / "ref"), "now": ROOT}
    print(f"| dataset | pairs | task | s, {args.ref} | s, now | ratio "
          f"| pairs/s, {args.ref} | pairs/s, now | max abs. difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        data = load_magellan(args.data / name, as_frame=True)
        clf = RecordPairClassifier(random_state=0, max_epochs=2)
        clf.fit(*data.train, validation_data=data.valid)
        model = work / f"{name}.model"
        clf.save(model)
        reports = {label: [] for label in roots}
        for _ in range(args.rounds):
            for label, root in roots.items():
                reports[label].append(run_worker(root, model, args.data / name,
                                                 args.repeats, args.explain_pairs,
                                                 work / f"{label}.npz"))
        outputs = {label: np.load(work / f"{label}.npz") for label in roots}
        n_test = len(data.test[0])
        n_candidates = len(outputs["now"]["candidate_proba"])
        for task, key, array, n in (
                ("predict_proba", "predict", "proba", n_test),
                ("predict_proba, candidates", "candidates", "candidate_proba",
                 n_candidates),
                ("explain", "explain", "attributions", min(n_test, args.explain_pairs))):
            reference = outputs[args.ref][array]
            difference = np.abs(reference - outputs["now"][array]).max()
            tolerance = 1e-2 * np.abs(reference).max() if key == "explain" else 1e-4
            if difference > tolerance:
                raise AssertionError(f"{name} {task}: the outputs differ by "
                                     f"{difference:.2g}")
            old, new = (float(np.median([r[key] for r in reports[label]]))
                        for label in roots)
            print(f"| {name} | {n:,} | {task} | {old:.3f} | {new:.3f} | {new / old:.2f} "
                  f"| {n / old:,.0f} | {n / new:,.0f} | {difference:.1g} |", flush=True)
    import torch
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}.")


if __name__ == "__main__":
    main()
