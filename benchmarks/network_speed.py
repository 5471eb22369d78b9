"""The network's prediction and explanation time against an earlier commit's network.

For each Magellan dataset: fit the default estimator briefly on ``train`` (the
weights do not change the cost), then, in the same process and on the ``test``
pairs, time alternately

- the network's ``predict_proba`` with this checkout's ``RecordPairNetwork`` and
  with the one of `--ref` (its ``skrecordpair/_bimpm.py``, read with ``git show``),
  holding the same weights; their probabilities must agree;
- ``explain`` with the parameters' gradients switched off while integrating (this
  checkout) and left on (as before).

Reports the median of `--repeats` rounds and the ratio new / old: below 1 is faster.

Usage::

    python benchmarks/network_speed.py --ref ecd3167
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import skrecordpair._explain as explain_module
from skrecordpair import RecordPairClassifier
from skrecordpair._data import PairDataset
from skrecordpair.datasets import load_magellan

from magellan import DATA, DATASETS  # this folder's benchmark: the same data sets

ROOT = Path(__file__).resolve().parents[1]


def network_module_at(ref):
    """``skrecordpair/_bimpm.py`` of commit `ref`, imported as a module."""
    source = subprocess.run(["git", "show", f"{ref}:skrecordpair/_bimpm.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_bimpm.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_bimpm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alternate(funcs, repeats):
    """Median seconds of each function, run in turns so that load hits all alike."""
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the commit to compare with")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain-pairs", type=int, default=200)
    args = parser.parse_args(argv)
    baseline = network_module_at(args.ref)
    print(f"| dataset | test pairs | network s, {args.ref} | network s, now | ratio "
          f"| explain s, gradients on | explain s, off | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        data = load_magellan(args.data / name, as_frame=True)
        clf = RecordPairClassifier(max_epochs=1, random_state=0, verbose=0)
        clf.fit(*data.train, validation_data=data.valid)
        X = data.test[0]
        encoded = clf.featurizer_.transform(X)
        dataset = PairDataset(encoded.take(encoded.by_length()))
        net = clf.net_
        current = net.module_
        old = baseline.RecordPairNetwork(**{k[len("module__"):]: v for k, v in
                                            net.get_params().items()
                                            if k.startswith("module__")})
        old.load_state_dict(current.state_dict())
        old.eval()

        def predict_with(module):
            def run():
                net.module_ = module
                return net.predict_proba(dataset)
            return run

        new_proba, old_proba = predict_with(current)(), predict_with(old)()
        if not np.allclose(new_proba, old_proba, atol=1e-5):
            sys.exit(f"{name}: the networks disagree by "
                     f"{np.abs(new_proba - old_proba).max():.2e}")
        network = alternate({"old": predict_with(old), "new": predict_with(current)},
                            args.repeats)
        net.module_ = current

        sample = X.iloc[:args.explain_pairs]
        frozen = explain_module._frozen

        def explain_with(context):
            def run():
                explain_module._frozen = context
                try:
                    clf.explain(sample)
                finally:
                    explain_module._frozen = frozen
            return run

        explain = alternate(
            {"on": explain_with(lambda module: contextlib.nullcontext()),
             "off": explain_with(frozen)}, args.repeats)
        print(f"| {name} | {len(X):,} | {network['old']:.3f} | {network['new']:.3f} | "
              f"{network['new'] / network['old']:.2f} | {explain['on']:.2f} | "
              f"{explain['off']:.2f} | {explain['off'] / explain['on']:.2f} |",
              flush=True)
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}.")


if __name__ == "__main__":
    main()
