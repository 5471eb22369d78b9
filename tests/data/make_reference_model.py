"""Write the reference model that tests/matcher/test_saved_model_compatibility.py loads.

Run once, with the skrecordpair that defines the format being frozen
(format version 1, written at commit 2d2baa8)::

    python tests/data/make_reference_model.py

It saves a small fitted model (default options: similarity features and prior)
as ``reference_model_v1.zip`` and, beside it, the probabilities and the
attributions that code computed for the pairs it was trained on, so that later
code can be checked to load the file and give the same numbers.

The attributions changed meaning later (the log-odds from a baseline chosen by
the prediction, instead of the explained logit from a perfect duplicate); the
explanation of the same pairs by the loaded reference model with that code is
in ``reference_model_v1_explanation_v2.npz``, written by::

    python tests/data/make_reference_model.py --explanation-only

Format version 2 (each component's state nested in ``model.json``) is frozen
the same way, as ``reference_model_v2.zip`` with its probabilities and
explanation in ``reference_model_v2_outputs.npz`` (written at the commit that
introduced it)::

    python tests/data/make_reference_model.py --format-2
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # conftest's synthetic pairs

from conftest import TINY, make_people_pairs  # noqa: E402

from skrecordpair import RecordPairClassifier  # noqa: E402


def main():
    left, right, y = make_people_pairs(80, seed=3)
    clf = RecordPairClassifier(max_epochs=4, random_state=0, **TINY).fit(left, right, y)
    clf.save(HERE / "reference_model_v1.zip")
    explanation = clf.explain(left[:6], right[:6], n_steps=8)
    np.savez(
        HERE / "reference_model_v1_outputs.npz",
        proba=clf.predict_proba(left, right),
        raw_attribution=explanation["raw_attribution"].to_numpy(),
        attribution=explanation["attribution"].to_numpy(),
    )


def explanation_v2():
    left, right, _ = make_people_pairs(80, seed=3)
    clf = RecordPairClassifier.load(HERE / "reference_model_v1.zip")
    explanation = clf.explain(left[:6], right[:6], n_steps=8)
    np.savez(
        HERE / "reference_model_v1_explanation_v2.npz",
        **{
            column: explanation[column].to_numpy()
            for column in (
                "raw_attribution",
                "attribution",
                "evidence_for_match",
                "baseline_log_odds",
            )
        },
    )


def format_2():
    left, right, y = make_people_pairs(80, seed=3)
    clf = RecordPairClassifier(max_epochs=4, random_state=0, **TINY).fit(left, right, y)
    clf.save(HERE / "reference_model_v2.zip")
    explanation = clf.explain(left[:6], right[:6], n_steps=8)
    np.savez(
        HERE / "reference_model_v2_outputs.npz",
        proba=clf.predict_proba(left, right),
        **{
            column: explanation[column].to_numpy()
            for column in ("raw_attribution", "attribution", "evidence_for_match")
        },
    )


if __name__ == "__main__":
    if "--format-2" in sys.argv:
        format_2()
    elif "--explanation-only" in sys.argv:
        explanation_v2()
    else:
        main()
