"""RecordPairClassifier with a pre-trained text encoder (a tiny random BERT)."""

import shutil
import string
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skrecordpair import RecordPairClassifier, _pretrained

from .conftest import TINY, make_people_pairs, save_tiny_bert

transformers = pytest.importorskip(
    "transformers", reason="the text encoder needs the optional extra 'transformers'")


def _save_tiny_bert(path, seed):
    # Letters and digits, alone and as continuations: every ASCII word has
    # subwords, so the vectors differ from value to value.
    pieces = list(string.ascii_lowercase + string.digits)
    return save_tiny_bert(path, pieces + ["##" + p for p in pieces], layers=1, seed=seed)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), seed=0)


@pytest.fixture(autouse=True)
def _fresh_caches():
    _pretrained._CACHES.clear()
    yield
    _pretrained._CACHES.clear()


@pytest.fixture(scope="module")
def encoded_clf(tiny_bert):


    left, right, y = make_people_pairs(120, seed=0)
    clf = RecordPairClassifier(**TINY, text_encoder=tiny_bert, max_epochs=3,
                               random_state=0)
    return clf.fit(left, right, y), (left, right, y)


def test_fit_predict_save_load_with_an_encoder(encoded_clf, tmp_path):
    clf, (left, right, y) = encoded_clf
    assert clf.net_.module_.pretrained_dim == 16
    proba = clf.predict_proba(left, right)
    assert proba.shape == (len(y), 2) and np.isfinite(proba).all()
    # A pair scored alone gets the probability it gets in a batch.
    for i in (0, 7, 31):
        alone = clf.predict_proba(left.iloc[[i]], right.iloc[[i]])
        np.testing.assert_allclose(alone[0], proba[i], atol=1e-5)
    clf.save(tmp_path / "model.zip")
    loaded = RecordPairClassifier.load(tmp_path / "model.zip")
    np.testing.assert_array_equal(loaded.predict_proba(left, right), proba)


def test_the_subword_vectors_change_the_predictions(encoded_clf):
    clf, (left, right, _) = encoded_clf
    proba = clf.predict_proba(left, right)[:, 1]
    # Zero the projection of the subword vectors: then they say nothing.
    weight = clf.net_.module_.pretrained_projection.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.zero_()
        changed = clf.predict_proba(left, right)[:, 1]
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert np.abs(changed - proba).max() > 1e-4


def test_each_distinct_value_is_encoded_once_per_process(tiny_bert):


    left, right, y = make_people_pairs(60, seed=1)
    clf = RecordPairClassifier(**TINY, text_encoder=tiny_bert, max_epochs=1,
                               random_state=0).fit(left, right, y)
    encoder = clf.featurizer_.text_encoder_
    distinct = sum(len(set(left[c].dropna().astype(str)) | set(right[c].dropna().astype(str)))
                   for c in left.columns)
    assert encoder.n_encoded_ == distinct
    # A clone (as in a grid search) reuses the cache: nothing new to encode.
    again = clone(clf).fit(left, right, y)
    assert again.featurizer_.text_encoder_.n_encoded_ == 0


def test_load_refuses_a_different_encoder_and_follows_a_moved_one(encoded_clf, tmp_path):
    clf, (left, right, _) = encoded_clf
    clf.save(tmp_path / "model")
    other = _save_tiny_bert(tmp_path / "other_bert", seed=1)
    with pytest.raises(ValueError, match="weights_sha256: saved") as info:
        RecordPairClassifier.load(tmp_path / "model", text_encoder=other)
    assert "different encoder" in str(info.value)
    moved = shutil.copytree(clf.text_encoder, tmp_path / "moved_bert")
    loaded = RecordPairClassifier.load(tmp_path / "model", text_encoder=moved)
    assert loaded.text_encoder == moved
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  clf.predict_proba(left, right))


def test_explain_attributes_per_field_with_an_encoder(encoded_clf):
    clf, (left, right, _) = encoded_clf
    explanation = clf.explain(left.iloc[:4], right.iloc[:4])
    assert len(explanation) == 4 * 2 * 3  # pairs x sides x fields
    assert set(explanation["field"]) == {"name", "city", "year"}
    assert np.isfinite(explanation["attribution"]).all()
    # Both baselines are used: the predicted matches move from the reference
    # pairs, whose encodings need their own subword vectors.
    assert set(explanation["baseline"]) == {"reference", "duplicate"}
    # Integrated gradients are nearly complete: the deltas are small next to
    # the attributions. (Not zero: the paper variant's argmax jumps.)
    per_side = explanation.groupby(["pair", "side"])
    total = per_side["raw_attribution"].sum().abs()
    assert (per_side["convergence_delta"].first().abs() < 0.1 * total).all()


@pytest.mark.parametrize("params, message", [
    ({"text_encoder_options": {"pooling": "mean", "colour": 1}},
     r"unknown option\(s\) \['colour'\]"),
    ({"fields": [("name", "name"), ("city", None)]}, r"have one side only"),
])
def test_bad_encoder_settings_say_what_is_wrong(tiny_bert, people, params, message):
    left, right, y = people
    clf = RecordPairClassifier(**TINY, text_encoder=tiny_bert, max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(left, right, y)


def test_without_transformers_asking_for_an_encoder_says_what_to_install(
        people, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    left, right, y = people
    # Without an encoder nothing needs transformers.
    RecordPairClassifier(**TINY, max_epochs=1).fit(left, right, y)
    clf = RecordPairClassifier(**TINY, text_encoder="sentence-transformers/all-MiniLM-L6-v2",
                               max_epochs=1)
    with pytest.raises(ImportError, match=r"pip install skrecordpair\[transformers\]"):
        clf.fit(left, right, y)
