"""Does this checkout fit, predict, explain and load as an earlier commit did?

A refactor's check: for each Magellan data set, a fresh process of each
checkout (`--ref`, unpacked with ``git archive``, and this one) fits the
estimator (``RecordPairClassifier(random_state=0)``, defaults otherwise, on
``train`` with ``validation_data=valid``; `--max-epochs` shortens it), scores
``test``, explains its first `--explain-pairs` pairs and saves the model. Then
this checkout loads the model that `--ref` saved and scores ``test`` again.
Reported per data set: the largest difference between the two checkouts'
test probabilities, thresholds and attributions, and between `--ref`'s
probabilities and those of its model loaded here. A refactor that keeps
behaviour gives zeros; anything else is a finding.

Usage::

    python benchmarks/same_results.py --data /work/shared/data/magellan --ref f19deaa \\
        --datasets beer fodors_zagats
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from _bench import (
    MAGELLAN_DATASETS,
    RESULTS,
    ROOT,
    Run,
    checkout,
    magellan_folder,
    run_in_checkout,
)


def fit_worker(data, max_epochs, explain_pairs, out):
    """Fit, score, explain and save; the outputs go to `out` (.npz) and
    `out`.model."""
    import skrecordpair
    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    magellan = load_magellan(data, as_frame=True)
    params = {"random_state": 0}
    if max_epochs:
        params["max_epochs"] = max_epochs
    clf = RecordPairClassifier(**params).fit(
        *magellan.train, validation_data=magellan.valid
    )
    X = magellan.test[0]
    proba = clf.predict_proba(X)
    attributions = clf.explain(X.iloc[:explain_pairs])["raw_attribution"].to_numpy()
    clf.save(f"{out}.model")
    np.savez(
        out,
        proba=proba,
        attributions=attributions,
        threshold=getattr(clf, "threshold_", np.nan),
    )
    print(json.dumps({"package": skrecordpair.__file__}))


def load_worker(data, model, out):
    """Load `model` (saved by another checkout) and score ``test``."""
    import skrecordpair
    from skrecordpair import RecordPairClassifier
    from skrecordpair.datasets import load_magellan

    X = load_magellan(data, split="test", as_frame=True)[0]
    np.savez(out, proba=RecordPairClassifier.load(model).predict_proba(X))
    print(json.dumps({"package": skrecordpair.__file__}))


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
        "--max-epochs",
        type=int,
        default=0,
        help="shorter fits (0: the default max_epochs)",
    )
    parser.add_argument("--explain-pairs", type=int, default=50)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "fit":
            data, max_epochs, explain_pairs, out = rest
            fit_worker(data, int(max_epochs), int(explain_pairs), out)
        else:
            load_worker(*rest)
        return
    for option in ("ref", "data"):
        if getattr(args, option) is None:
            parser.error(f"--{option} is required")

    run = Run("same_results", args, argv)
    work = Path(tempfile.mkdtemp())
    roots = {"ref": checkout(args.ref, work / "ref"), "now": ROOT}
    for name in args.datasets:
        folder = magellan_folder(args.data, name)
        out = {}
        for label, root in roots.items():
            run_in_checkout(
                root,
                __file__,
                "fit",
                folder,
                args.max_epochs,
                args.explain_pairs,
                work / f"{name}-{label}.npz",
            )
            out[label] = np.load(work / f"{name}-{label}.npz")
        run_in_checkout(
            ROOT,
            __file__,
            "load",
            folder,
            work / f"{name}-ref.npz.model",
            work / f"{name}-loaded.npz",
        )
        loaded = np.load(work / f"{name}-loaded.npz")

        def largest(a, b):
            return float(np.nanmax(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0))

        row = run.results[name] = {
            "test_pairs": len(out["now"]["proba"]),
            "proba": largest(out["ref"]["proba"], out["now"]["proba"]),
            "threshold": largest(out["ref"]["threshold"], out["now"]["threshold"]),
            "attributions": largest(
                out["ref"]["attributions"], out["now"]["attributions"]
            ),
            "loaded_ref_model_proba": largest(out["ref"]["proba"], loaded["proba"]),
        }
        print(
            f"{name}: largest differences, now against {args.ref}: "
            + ", ".join(
                f"{key} {value:.2g}"
                for key, value in row.items()
                if key != "test_pairs"
            ),
            flush=True,
        )
    run.write()


if __name__ == "__main__":
    main()
