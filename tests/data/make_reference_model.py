"""Freeze a reference model that tests/matcher/test_saved_model_compatibility.py loads.

Run once per saved-model format, with the skrecordpair that introduced it::

    python tests/data/make_reference_model.py

It fits a small model (default options: similarity features and prior), saves
it as ``reference_model_v<format>.zip`` and, beside it, the probabilities and
the explanation that code computed for the pairs it was trained on
(``reference_model_v<format>_outputs.npz``), so that later code can be checked
to load the file and give the same numbers. Format 1 was frozen at commit
2d2baa8, format 2 at the commit that introduced it.

Format 1's outputs hold the attributions as they meant then (the explained
logit from a perfect duplicate); what the loaded format-1 model explains since
they changed meaning is in ``reference_model_v1_explanation_v2.npz``, written
by::

    python tests/data/make_reference_model.py --explanation-only
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # conftest's synthetic pairs

from conftest import TINY, make_people_pairs  # noqa: E402

from skrecordpair import RecordPairClassifier  # noqa: E402
from skrecordpair._persistence import FORMAT_VERSION  # noqa: E402

EXPLANATION = (
    "raw_attribution",
    "attribution",
    "evidence_for_match",
    "baseline_log_odds",
)


def _explained(clf, left, right):
    """The explanation columns of the first six training pairs."""
    explanation = clf.explain(left[:6], right[:6], n_steps=8)
    return {column: explanation[column].to_numpy() for column in EXPLANATION}


def freeze():
    """Fit, save and record the reference model of the current format."""
    left, right, y = make_people_pairs(80, seed=3)
    clf = RecordPairClassifier(max_epochs=4, random_state=0, **TINY).fit(left, right, y)
    clf.save(HERE / f"reference_model_v{FORMAT_VERSION}.zip")
    np.savez(
        HERE / f"reference_model_v{FORMAT_VERSION}_outputs.npz",
        proba=clf.predict_proba(left, right),
        **_explained(clf, left, right),
    )


def explanation_v2():
    left, right, _ = make_people_pairs(80, seed=3)
    clf = RecordPairClassifier.load(HERE / "reference_model_v1.zip")
    np.savez(
        HERE / "reference_model_v1_explanation_v2.npz", **_explained(clf, left, right)
    )


if __name__ == "__main__":
    if "--explanation-only" in sys.argv:
        explanation_v2()
    else:
        freeze()
