"""The network's prediction and explanation time against an earlier commit's network.

For each Magellan dataset: fit the default estimator briefly on ``train`` (the
weights do not change the cost), then, in the same process and on the ``test``
pairs, time alternately

- the network's ``predict_proba`` with this checkout's ``RecordPairNetwork`` and
  with the one of `--ref` (its ``skrecordpair/_bimpm.py``, read with ``git show``),
  holding the same weights; their probabilities must agree;
- ``explain`` with the parameters' gradients switched off while integrating (this
  checkout) and left on (as before).

Reports the median of `--repeats` rounds and the ratio new / old: below 1 is
faster. The figures go to a JSON file (``benchmarks/results/`` unless `--out`).

This benchmark reaches into the package's private parts by design (the network
module of two commits, the encoded pairs, ``explain``'s gradient switch): it
measures internal changes, and may need updating when they move.

Usage::

    python benchmarks/network_speed.py --data /work/shared/data/magellan --ref ecd3167
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _bench import (
    MAGELLAN_DATASETS,
    ROOT,
    Run,
    add_arguments,
    in_turns,
    magellan_folder,
)

import skrecordpair._matcher.explain as explain_module
from skrecordpair import RecordPairClassifier

# This benchmark times the network itself, below the public API.
from skrecordpair._matcher.batches import PairDataset
from skrecordpair.datasets import load_magellan


def network_module_at(ref):
    """``skrecordpair/_bimpm.py`` of commit `ref`, imported as a module."""
    source = subprocess.run(
        ["git", "show", f"{ref}:skrecordpair/_bimpm.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_bimpm.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_bimpm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--ref", required=True, help="the commit to compare with")
    parser.add_argument(
        "--datasets", nargs="+", default=MAGELLAN_DATASETS, choices=MAGELLAN_DATASETS
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain-pairs", type=int, default=200)
    args = parser.parse_args(argv)
    run = Run("network_speed", args, argv)
    baseline = network_module_at(args.ref)
    for name in args.datasets:
        data = load_magellan(magellan_folder(args.data, name), as_frame=True)
        clf = RecordPairClassifier(max_epochs=1, random_state=0, verbose=0)
        clf.fit(*data.train, validation_data=data.valid)
        X = data.test[0]
        encoded = clf.featurizer_.transform(X)
        dataset = PairDataset(encoded.take(encoded.by_length()))
        net = clf.net_
        current = net.module_
        old = baseline.RecordPairNetwork(
            **{
                k[len("module__") :]: v
                for k, v in net.get_params().items()
                if k.startswith("module__")
            }
        )
        old.load_state_dict(current.state_dict())
        old.eval()

        def predict_with(module, net=net, dataset=dataset):
            def run():
                net.module_ = module
                return net.predict_proba(dataset)

            return run

        new_proba, old_proba = predict_with(current)(), predict_with(old)()
        if not np.allclose(new_proba, old_proba, atol=1e-5):
            sys.exit(
                f"{name}: the networks disagree by "
                f"{np.abs(new_proba - old_proba).max():.2e}"
            )
        network = in_turns(
            {"old": predict_with(old), "new": predict_with(current)}, args.repeats
        )
        net.module_ = current

        sample = X.iloc[: args.explain_pairs]
        frozen = explain_module._frozen

        def explain_with(context, clf=clf, sample=sample, frozen=frozen):
            def run():
                explain_module._frozen = context
                try:
                    clf.explain(sample)
                finally:
                    explain_module._frozen = frozen

            return run

        explain = in_turns(
            {
                "on": explain_with(lambda module: contextlib.nullcontext()),
                "off": explain_with(frozen),
            },
            args.repeats,
        )
        median = {
            name: float(np.median(t)) for name, t in {**network, **explain}.items()
        }
        run.results[name] = {
            "test_pairs": len(X),
            "explain_pairs": len(sample),
            "network_seconds": {"ref": network["old"], "now": network["new"]},
            "network_median_seconds": {"ref": median["old"], "now": median["new"]},
            "network_ratio": median["new"] / median["old"],
            "explain_seconds": {
                "gradients_on": explain["on"],
                "gradients_off": explain["off"],
            },
            "explain_median_seconds": {
                "gradients_on": median["on"],
                "gradients_off": median["off"],
            },
            "explain_ratio": median["off"] / median["on"],
        }
        print(
            f"{name}, {len(X):,} test pairs: network {median['old']:.3f} s at "
            f"{args.ref}, {median['new']:.3f} s now "
            f"({median['new'] / median['old']:.2f}); explain {median['on']:.2f} s "
            f"with gradients on, {median['off']:.2f} s off "
            f"({median['off'] / median['on']:.2f})",
            flush=True,
        )
    run.write()


if __name__ == "__main__":
    main()
