"""Draw the pictures of docs/explanations.rst into docs/_static.

Trains the default estimator on the ER-Magellan ``beer`` data set (``valid`` for
early stopping and the threshold), explains its test pairs and draws the mean
evidence per field by predicted class (``evidence_by_field.png``) and the
waterfall of the test match the model is surest of (``waterfall.png``).

Usage::

    python docs/make_explanation_figures.py --data /work/shared/data/magellan
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np

from skrecordpair import (
    RecordPairClassifier,
    plot_evidence_by_field,
    plot_waterfall,
)
from skrecordpair.datasets import load_magellan

STATIC = Path(__file__).resolve().parent / "_static"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the folder holding the ER-Magellan data set folders",
    )
    parser.add_argument("--dataset", default="beer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load_magellan(args.data / args.dataset, as_frame=True)
    clf = RecordPairClassifier(random_state=args.seed).fit(
        *data.train, validation_data=data.valid
    )
    X, y = data.test
    explanation = clf.explain(X)
    ax = plot_evidence_by_field(explanation)
    ax.set_title(
        f"{args.dataset}: which fields drive the decisions ({len(X)} test pairs)"
    )
    ax.figure.savefig(STATIC / "evidence_by_field.png", dpi=100, bbox_inches="tight")
    proba = clf.predict_proba(X)[:, 1]
    surest = X.index[np.argmax(np.where(y == 1, proba, -1))]
    ax = plot_waterfall(explanation, pair=surest)
    ax.figure.savefig(STATIC / "waterfall.png", dpi=100, bbox_inches="tight")
    print(
        f"wrote {STATIC / 'evidence_by_field.png'} and {STATIC / 'waterfall.png'} "
        f"(pair {surest})"
    )


if __name__ == "__main__":
    main()
