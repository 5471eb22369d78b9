"""A model saved by an earlier version loads and predicts as it did then."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skrecordpair import RecordPairClassifier

from .conftest import make_people_pairs

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def reference():
    return (RecordPairClassifier.load(DATA / "reference_model_v1.zip"),
            np.load(DATA / "reference_model_v1_outputs.npz"))


def test_reference_model_gives_the_saved_probabilities(reference):
    clf, expected = reference
    left, right, _ = make_people_pairs(80, seed=3)
    # Identical up to float32 rounding in another batch arrangement.
    assert_allclose(clf.predict_proba(left, right), expected["proba"], atol=1e-6)


def test_reference_model_gives_the_saved_attributions(reference):
    clf, expected = reference
    left, right, _ = make_people_pairs(80, seed=3)
    explanation = clf.explain(left[:6], right[:6], n_steps=8)
    assert_allclose(explanation["raw_attribution"], expected["raw_attribution"],
                    atol=1e-5)
    assert_allclose(explanation["attribution"], expected["attribution"], atol=1e-5)
