"""Whole-prediction time of this checkout against an earlier commit, same model.

``network_speed.py`` times the network alone; this times ``predict_proba`` from
the pair frame on: tokenising, the similarity features, the prior and the
network. For each Magellan dataset, fit the default estimator briefly on
``train`` (the weights do not change the cost) and save it; then, in turns, a
fresh process of each checkout (`--ref`, unpacked with ``git archive``, and this
one) loads that model and times ``predict_proba`` on the ``test`` pairs. The two
must give the same probabilities.

Reports the median over `--rounds` processes of each process's median time,
pairs/s and the ratio now / ref: below 1 is faster.

Usage::

    python benchmarks/predict_speed.py --ref 71ca97c
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "magellan"
DATASETS = ["amazon_google", "dblp_acm", "walmart_amazon", "abt_buy", "beer",
            "fodors_zagats"]


def checkout(ref, into):
    """The package of commit `ref`, unpacked under `into`."""
    archive = subprocess.run(["git", "archive", ref, "skrecordpair"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def worker(model, data, repeats, out):
    """Time ``predict_proba`` of the saved `model` on the test pairs of `data`."""
    import skrecordpair
    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    X = load_magellan(data, split="test", as_frame=True)[0]
    clf = RecordPairClassifier.load(model)
    proba = clf.predict_proba(X)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict_proba(X)
        times.append(time.perf_counter() - start)
    np.save(out, proba)
    print(json.dumps({"seconds": float(np.median(times)), "package": skrecordpair.__file__}))


def run_worker(root, model, data, repeats, out):
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run(
        [sys.executable, __file__, "--worker", str(model), str(data), str(repeats),
         str(out)], env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the worker in {root} failed:\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if not report["package"].startswith(str(root)):
        raise RuntimeError(f"the worker imported {report['package']}, not {root}")
    return report["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="the commit to compare with (required)")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per checkout, in turns")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed predictions per process")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        model, data, repeats, out = args.worker
        worker(model, data, int(repeats), out)
        return
    if args.ref is None:
        parser.error("--ref is required")

    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    work = Path(tempfile.mkdtemp())
    roots = {args.ref: checkout(args.ref, work / "ref"), "now": ROOT}
    print(f"| dataset | test pairs | s, {args.ref} | s, now | ratio "
          f"| pairs/s, {args.ref} | pairs/s, now | max abs. difference |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        data = load_magellan(args.data / name, as_frame=True)
        clf = RecordPairClassifier(random_state=0, max_epochs=2)
        clf.fit(*data.train, validation_data=data.valid)
        model = work / f"{name}.model"
        clf.save(model)
        seconds = {label: [] for label in roots}
        for _ in range(args.rounds):
            for label, root in roots.items():
                seconds[label].append(run_worker(root, model, args.data / name,
                                                 args.repeats, work / f"{label}.npy"))
        difference = np.abs(np.load(work / f"{args.ref}.npy")
                            - np.load(work / "now.npy")).max()
        if difference > 1e-4:
            raise AssertionError(f"{name}: the probabilities differ by {difference:.2g}")
        old, new = (float(np.median(seconds[label])) for label in roots)
        n = len(data.test[0])
        print(f"| {name} | {n:,} | {old:.3f} | {new:.3f} | {new / old:.2f} "
              f"| {n / old:,.0f} | {n / new:,.0f} | {difference:.1g} |", flush=True)
    import torch
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}.")


if __name__ == "__main__":
    main()
