"""RecordPairClassifier with a pre-trained text encoder (a tiny random BERT)."""

import shutil
import string
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skrecordpair import RecordPairClassifier
from skrecordpair._matcher import text_encoder as _pretrained

from ..conftest import TINY, make_people_pairs, save_tiny_bert

transformers = pytest.importorskip(
    "transformers", reason="the text encoder needs the optional extra 'transformers'"
)


def _save_tiny_bert(path, seed):
    # Letters and digits, alone and as continuations: every ASCII word has
    # subwords, so the vectors differ from value to value.
    pieces = list(string.ascii_lowercase + string.digits)
    return save_tiny_bert(
        path, pieces + ["##" + p for p in pieces], layers=1, seed=seed
    )


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
    clf = RecordPairClassifier(
        **TINY, text_encoder=tiny_bert, max_epochs=3, random_state=0
    )
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
    clf = RecordPairClassifier(
        **TINY, text_encoder=tiny_bert, max_epochs=1, random_state=0
    ).fit(left, right, y)
    encoder = clf.featurizer_.text_encoder_
    distinct = sum(
        len(set(left[c].dropna().astype(str)) | set(right[c].dropna().astype(str)))
        for c in left.columns
    )
    assert encoder.n_encoded_ == distinct
    # A clone (as in a grid search) reuses the cache: nothing new to encode.
    again = clone(clf).fit(left, right, y)
    assert again.featurizer_.text_encoder_.n_encoded_ == 0


def test_load_refuses_a_different_encoder_and_follows_a_moved_one(
    encoded_clf, tmp_path
):
    clf, (left, right, _) = encoded_clf
    clf.save(tmp_path / "model")
    other = _save_tiny_bert(tmp_path / "other_bert", seed=1)
    with pytest.raises(ValueError, match="weights_sha256: saved") as info:
        RecordPairClassifier.load(tmp_path / "model", text_encoder=other)
    assert "different encoder" in str(info.value)
    moved = shutil.copytree(clf.text_encoder, tmp_path / "moved_bert")
    loaded = RecordPairClassifier.load(tmp_path / "model", text_encoder=moved)
    assert loaded.text_encoder == moved
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


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


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"text_encoder_options": {"pooling": "mean", "colour": 1}},
            r"unknown option\(s\) \['colour'\]",
        ),
        ({"fields": [("name", "name"), ("city", None)]}, r"have one side only"),
    ],
)
def test_bad_encoder_settings_say_what_is_wrong(tiny_bert, people, params, message):
    left, right, y = people
    clf = RecordPairClassifier(**TINY, text_encoder=tiny_bert, max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(left, right, y)


def test_without_transformers_asking_for_an_encoder_says_what_to_install(
    people, monkeypatch
):
    monkeypatch.setitem(sys.modules, "transformers", None)
    left, right, y = people
    # Without an encoder nothing needs transformers.
    RecordPairClassifier(**TINY, max_epochs=1).fit(left, right, y)
    clf = RecordPairClassifier(
        **TINY, text_encoder="sentence-transformers/all-MiniLM-L6-v2", max_epochs=1
    )
    with pytest.raises(ImportError, match=r"pip install skrecordpair\[transformers\]"):
        clf.fit(left, right, y)


# ------------------------------------------- a saved model's encoder, crafted or moved


def _resign(path, name, edit):
    """Edit the JSON file `name` of the saved model at `path` and rewrite the
    manifest to match, as anyone who can write the files can."""
    import hashlib
    import json

    data = json.loads((path / name).read_text())
    edit(data)
    raw = json.dumps(data).encode()
    (path / name).write_bytes(raw)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = {
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    (path / "manifest.json").write_text(json.dumps(manifest))


def _name_encoder(path, encoder):
    _resign(
        path, "config.json", lambda c: c["params"].update(text_encoder=str(encoder))
    )


@pytest.fixture
def saved_model(encoded_clf, tmp_path):
    clf, _ = encoded_clf
    clf.save(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def spy(monkeypatch):
    """Every from_pretrained call of transformers' Auto classes: (class, kwargs)."""
    calls = []
    for kind in ("AutoConfig", "AutoTokenizer", "AutoModel"):
        cls = getattr(transformers, kind)
        original = cls.from_pretrained.__func__

        def record(klass, *args, _original=original, _kind=kind, **kwargs):
            calls.append((_kind, kwargs))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(record))
    return calls


def test_a_hub_name_read_from_a_saved_model_is_never_fetched(
    saved_model, monkeypatch, spy
):
    import socket

    # N3: a crafted config named a hub repository, and load asked the hub for it.
    _name_encoder(saved_model, "attacker/evil-encoder")
    connections = []

    def connect(self, address, *args):
        connections.append(address)
        raise OSError("no network in this test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    with pytest.raises(OSError, match=r"load\(path, text_encoder=") as info:
        RecordPairClassifier.load(saved_model)
    assert "'attacker/evil-encoder'" in str(info.value)
    assert connections == []
    assert spy and all(
        kwargs.get("local_files_only") is True
        and kwargs.get("trust_remote_code") is False
        for _, kwargs in spy
    )


def test_naming_the_encoder_at_load_allows_the_hub_and_never_remote_code(
    encoded_clf, saved_model, spy
):
    clf, (left, right, _) = encoded_clf
    loaded = RecordPairClassifier.load(saved_model, text_encoder=clf.text_encoder)
    assert {kind for kind, _ in spy} == {"AutoConfig", "AutoTokenizer", "AutoModel"}
    assert all(
        kwargs.get("local_files_only") is False
        and kwargs.get("trust_remote_code") is False
        for _, kwargs in spy
    )
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


def test_an_encoder_with_custom_code_is_refused_without_running_it(
    saved_model, tmp_path, monkeypatch
):
    # N3: with "y" on stdin, transformers' "run the custom code? [y/N]" prompt
    # ran the directory's Python code inside load.
    evil = tmp_path / "evil_encoder"
    evil.mkdir()
    marker = tmp_path / "code_ran"
    (evil / "config.json").write_text(
        '{"model_type": "evil-bert", "auto_map": {"AutoConfig": "evil.EvilConfig", '
        '"AutoModel": "evil.EvilModel", "AutoTokenizer": ["evil.EvilTokenizer", null]}}'
    )
    (evil / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.setattr("builtins.input", lambda *args: "y")
    _name_encoder(saved_model, evil)
    with pytest.raises(
        ValueError, match=r"Cannot load the text encoder .*'evil_encoder'"
    ):
        RecordPairClassifier.load(saved_model)
    with pytest.raises(ValueError, match=r"Cannot load the text encoder"):
        RecordPairClassifier.load(saved_model, text_encoder=evil)
    assert not marker.exists()


def test_a_different_encoder_is_refused_before_its_weights_load(
    saved_model, tmp_path, spy
):
    # N3: a crafted config named another local encoder, which was loaded whole
    # before the identity refused it.
    other = save_tiny_bert(tmp_path / "two_layers", list("abc"), layers=2)
    _name_encoder(saved_model, other)
    with pytest.raises(ValueError, match=r"different encoder \(config_sha256: saved"):
        RecordPairClassifier.load(saved_model)
    assert "AutoModel" not in {kind for kind, _ in spy}


def _copy_with_tokenizer_edit(source, target, edit):
    shutil.copytree(source, target)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        if (target / name).exists():
            (target / name).write_text(edit(name, (target / name).read_text()))
    return target


def _swap_letters(name, text):
    # The ids of "a" and "b" exchanged: the same weights read other rows.
    if name == "vocab.txt":
        lines = text.split("\n")
        i, j = lines.index("a"), lines.index("b")
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if name == "tokenizer.json":
        return (
            text.replace('"a": ', '"@tmp": ')
            .replace('"b": ', '"a": ')
            .replace('"@tmp": ', '"b": ')
        )
    return text


def _flip_lowercase(name, text):
    if name == "tokenizer_config.json":
        return text.replace('"do_lower_case": true', '"do_lower_case": false')
    if name == "tokenizer.json":
        return text.replace('"lowercase": true', '"lowercase": false')
    return text


@pytest.mark.parametrize("edit", [_swap_letters, _flip_lowercase])
def test_an_encoder_with_another_tokenizer_is_refused(
    encoded_clf, saved_model, tmp_path, edit
):
    # N10: the identity ignored the tokenizer; the predictions moved silently.
    clf, _ = encoded_clf
    changed = _copy_with_tokenizer_edit(Path(clf.text_encoder), tmp_path / "tok", edit)
    with pytest.raises(
        ValueError, match=r"different encoder \(tokenizer_sha256: saved"
    ):
        RecordPairClassifier.load(saved_model, text_encoder=changed)


def test_a_model_saved_before_the_tokenizer_hash_still_loads(encoded_clf, saved_model):
    clf, (left, right, _) = encoded_clf
    _resign(
        saved_model,
        "model.json",
        lambda m: m["featurizer"]["text_encoder"].pop("tokenizer_sha256"),
    )
    loaded = RecordPairClassifier.load(saved_model)
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


def test_a_moved_encoder_names_the_parameter_not_the_old_path(encoded_clf, tmp_path):
    # N12: "OSError: Repo id must be in the form ... '<old absolute path>'".
    clf, (left, right, y) = encoded_clf
    place = Path(shutil.copytree(clf.text_encoder, tmp_path / "gone_bert"))
    model = (
        clone(clf).set_params(text_encoder=str(place), max_epochs=1).fit(left, right, y)
    )
    model.save(tmp_path / "model")
    saved = (tmp_path / "model" / "model.json").read_text()
    assert str(tmp_path) not in saved  # the identity names the directory only
    shutil.rmtree(place)
    with pytest.raises(OSError, match=r"load\(path, text_encoder=") as info:
        RecordPairClassifier.load(tmp_path / "model")
    assert "'gone_bert'" in str(info.value) and str(tmp_path) not in str(info.value)


def test_max_length_beyond_the_encoders_positions_is_a_clear_error(
    tiny_bert, people, saved_model
):
    # N12: a RuntimeError about expanded tensor sizes at predict.
    left, right, y = people
    clf = RecordPairClassifier(
        **TINY,
        text_encoder=tiny_bert,
        max_epochs=1,
        text_encoder_options={"max_length": 500},
    )
    with pytest.raises(
        ValueError, match=r"max_length=500 is more than the 64 positions"
    ):
        clf.fit(left, right, y)

    def both(edit):
        _resign(saved_model, "config.json", edit)

    both(
        lambda c: c["params"].update(
            text_encoder_options={"__dict__": [["max_length", 502]]}
        )
    )
    _resign(
        saved_model,
        "model.json",
        lambda m: m["featurizer"]["text_encoder"].update(max_length=502),
    )
    with pytest.raises(
        ValueError, match=r"max_length=502 is more than the 64 positions"
    ):
        RecordPairClassifier.load(saved_model)


@pytest.mark.skipif(torch.cuda.device_count() > 3, reason="cuda:3 exists here")
def test_an_unavailable_encoder_device_is_a_clear_error(saved_model):
    # N12: "AssertionError: Torch not compiled with CUDA enabled".
    _resign(
        saved_model,
        "config.json",
        lambda c: c["params"].update(
            text_encoder_options={"__dict__": [["device", "cuda:3"]]}
        ),
    )
    with pytest.raises(
        ValueError,
        match=r"Cannot put the text encoder .* on device "
        r"'cuda:3'.*text_encoder_options",
    ):
        RecordPairClassifier.load(saved_model)
