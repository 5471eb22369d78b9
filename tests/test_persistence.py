"""Safe save/load (``clf.save`` / ``RecordPairClassifier.load``): plain data only."""

import builtins
import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from skrecordpair import RecordPairClassifier, __version__, pair_frame
from skrecordpair._persistence import FORMAT_VERSION

from .conftest import TINY, make_people_pairs


def tiny(**kwargs):
    params = dict(TINY, max_epochs=2, random_state=0)
    params.update(kwargs)
    return RecordPairClassifier(**params)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The session's fitted model, saved once (tests copy it before tampering)."""
    path = tmp_path_factory.mktemp("saved") / "model"
    fitted.save(path)
    return path


@pytest.fixture
def copy(saved, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    return target


def rehash(path):
    """Rewrite the manifest to match the files, as a deliberate tamperer would."""
    manifest = json.loads((path / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (path / name).read_bytes()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (path / "manifest.json").write_text(json.dumps(manifest))


def edit_json(path, name, edit, *, fix_manifest=True):
    data = json.loads((path / name).read_text())
    edit(data)
    (path / name).write_text(json.dumps(data))
    if fix_manifest:
        rehash(path)


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("archive", [False, True], ids=["directory", "zip"])
def test_round_trip_gives_identical_predictions(fitted, people, tmp_path, archive):
    left, right, _ = people
    path = tmp_path / ("model.zip" if archive else "model")
    assert fitted.save(path) is fitted
    assert path.is_file() == archive
    loaded = RecordPairClassifier.load(path)
    assert type(loaded) is RecordPairClassifier
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), fitted.predict_proba(left, right)
    )
    np.testing.assert_array_equal(
        loaded.predict(left, right), fitted.predict(left, right)
    )
    assert loaded.get_params() == fitted.get_params()
    assert loaded.fields_ == fitted.fields_
    assert loaded.vocabulary_ == fitted.vocabulary_
    assert loaded.n_features_in_ == fitted.n_features_in_
    np.testing.assert_array_equal(loaded.feature_names_in_, fitted.feature_names_in_)
    assert loaded.classes_.dtype == fitted.classes_.dtype
    assert len(loaded.net_.history_) == len(fitted.net_.history_)
    assert loaded.numeric_fields_ == fitted.numeric_fields_
    assert type(loaded.prior_) is type(fitted.prior_)


def test_model_json_holds_each_components_state_under_its_own_key(fitted, saved):
    # Format 2: the featurizer's and the network's states as they give them.
    from skrecordpair._matcher.net_state import net_state

    model = json.loads((saved / "model.json").read_text())
    assert sorted(model) == ["estimator", "featurizer", "network"]
    assert model["featurizer"] == json.loads(json.dumps(fitted.featurizer_.to_state()))
    assert model["network"] == json.loads(json.dumps(net_state(fitted.net_)[0]))
    assert sorted(model["estimator"]) == [
        "attributes",
        "classes",
        "feature_names_in",
        "n_features_in",
    ]
    assert model["estimator"]["attributes"] == {
        "threshold_": fitted.threshold_,
        "n_candidate_nonmatches_": fitted.n_candidate_nonmatches_,
    }


def _as_format_1(path):
    """Rewrite the format-2 model at `path` as format 1 laid it out."""

    def flatten(model):
        estimator, featurizer, network = (
            model.pop(k) for k in ("estimator", "featurizer", "network")
        )
        numeric = featurizer.pop("numeric_fields")
        model.update(
            estimator,
            **featurizer,
            network=network["arguments"],
            shared_weights=network["shared_weights"],
            optimizer=network["optimizer"],
        )
        model["attributes"] = {"numeric_fields_": numeric, **model["attributes"]}

    edit_json(path, "model.json", flatten)
    edit_json(
        path, "manifest.json", lambda m: m.update(format_version=1), fix_manifest=False
    )


@pytest.mark.parametrize("prior", [True, False])
def test_a_format_1_model_upgrades_and_predicts_as_saved(people, tmp_path, prior):
    left, right, y = people
    clf = tiny(similarity_prior=prior, similarity_features=prior, warm_start=True)
    clf.fit(left, right, y).save(tmp_path / "m")
    _as_format_1(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )
    assert loaded.threshold_ == clf.threshold_
    assert loaded.numeric_fields_ == clf.numeric_fields_
    # Saved again, it is format 2, and continues training as the original.
    loaded.save(tmp_path / "again")
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 2
    np.testing.assert_array_equal(
        loaded.fit(left, right, y).predict_proba(left, right),
        clf.fit(left, right, y).predict_proba(left, right),
    )


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda m: m.pop("vocabulary"),
            r"model.json lacks the key\(s\) \['vocabulary'\]",
        ),
        (lambda m: m.update(attributes=[]), "'attributes' must be a JSON object"),
        (
            lambda m: m["attributes"].pop("numeric_fields_"),
            "numeric_fields_ must be a list of field names",
        ),
        (lambda m: m["network"].update(evil=1), "unknown argument"),
    ],
)
def test_a_malformed_format_1_model_is_refused(copy, edit, match):
    _as_format_1(copy)
    edit_json(copy, "model.json", edit)
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier.load(copy)


def test_without_prior_no_prior_file_and_stale_one_removed(people, tmp_path):
    left, right, y = people
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0)
    clf.fit(left, right, y).save(tmp_path / "model")
    assert (tmp_path / "model" / "prior.skops").exists()
    plain = clone(clf).set_params(similarity_prior=False, similarity_features=False)
    plain.fit(left, right, y).save(tmp_path / "model")  # over the earlier save
    assert not (tmp_path / "model" / "prior.skops").exists()
    loaded = RecordPairClassifier.load(tmp_path / "model")
    assert loaded.prior_ is None and loaded.net_.module_.n_similarity_features == 0
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), plain.predict_proba(left, right)
    )


def test_prior_file_with_foreign_types_is_refused(saved, tmp_path):
    """The prior is read with skops, trusting only the types of its trees."""
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    data = skops.io.dumps(make_pipeline(FunctionTransformer(np.log1p)))
    (copy / "prior.skops").write_bytes(data)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["prior.skops"] = {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="prior.skops"):
        RecordPairClassifier.load(copy)


def test_directory_holds_plain_data_only(saved):
    names = sorted(p.name for p in saved.iterdir())
    assert names == [
        "config.json",
        "history.json",
        "manifest.json",
        "model.json",
        "prior.skops",
        "weights.safetensors",
    ]
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["skrecordpair_version"] == __version__
    for name in names:
        if name.endswith(".json"):
            json.loads((saved / name).read_text())  # valid JSON, nothing else
        assert not (saved / name).read_bytes().startswith(b"\x80")  # no pickle


def test_loaded_model_pickles_and_explains(fitted, people, saved):
    left, right, _ = people
    loaded = RecordPairClassifier.load(saved)
    restored = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(
        restored.predict_proba(left, right), fitted.predict_proba(left, right)
    )
    pd.testing.assert_frame_equal(
        loaded.explain(left[:3], right[:3], n_steps=8),
        fitted.explain(left[:3], right[:3], n_steps=8),
    )


@pytest.mark.parametrize("share", [True, False])
def test_shared_matching_weights_stay_shared(people, tmp_path, share):
    left, right, y = people
    clf = tiny(share_matching_weights=share, max_epochs=1).fit(left, right, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    for which in ("matcher_forward", "matcher_backward"):
        matcher = getattr(loaded.net_.module_, which)
        same = (
            matcher.attentive_match_weights is matcher.attentive_match_weights_reversed
        )
        assert same == share
        original = getattr(clf.net_.module_, which)
        torch.testing.assert_close(
            matcher.attentive_match_weights_reversed,
            original.attentive_match_weights_reversed,
            rtol=0,
            atol=0,
        )
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["match", "maybe", "no"]),  # numpy unicode
        pd.Series(["match", "maybe", "no"], dtype=object),  # object
        np.array([-1, 3, 10**12]),  # int64
        np.array([False, True, True]),  # bool
    ],
)
def test_class_labels_round_trip_exactly(tmp_path, labels):
    left, right, _ = make_people_pairs(60, seed=1)
    y = np.asarray(labels, dtype=labels.dtype)[np.arange(60) % len(labels)]
    clf = tiny(max_epochs=1, early_stopping=False).fit(left, right, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    np.testing.assert_array_equal(loaded.predict(left, right), clf.predict(left, right))


def test_non_default_parameters_round_trip(tmp_path):
    left, right, y = make_people_pairs(60, seed=2)
    X = pair_frame(left, right).rename(columns={"right_name": "right_fullname"})
    clf = tiny(
        fields=[("name", "fullname"), "city", ("year", None)],
        max_epochs=1,
        hidden_layer_sizes=(6, 4),
        forward_matching=("full",),
        backward_matching=(),
        class_weight={0: 1.0, 1: 2.5},
        optimizer=torch.optim.AdamW,
        device=torch.device("cpu"),
        char_encoder="gru",
        field_encoder="cnn",
        aggregator="lstm",
        max_vocabulary=None,
        prepend_field_names=True,
    ).fit(X, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    params = loaded.get_params()
    assert params["fields"] == [("name", "fullname"), "city", ("year", None)]
    assert params["hidden_layer_sizes"] == (6, 4) and params["backward_matching"] == ()
    assert params["class_weight"] == {0: 1.0, 1: 2.5}
    assert params["optimizer"] is torch.optim.AdamW
    assert params["device"] == "cpu" and params["max_vocabulary"] is None
    torch.testing.assert_close(
        loaded.net_.criterion_.weight, clf.net_.criterion_.weight
    )
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_set_params_after_fit_keeps_the_fitted_architecture(people, tmp_path):
    # The saved network is the fitted one, even if parameters changed afterwards.
    left, right, y = people
    clf = tiny(max_epochs=1).fit(left, right, y)
    clf.set_params(field_hidden_size=3, max_tokens_per_field=2)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.field_hidden_size == 3 and loaded.max_tokens_per_field == 2
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


def test_callbacks_are_dropped_with_a_warning(people, tmp_path):
    left, right, y = people

    class Noop(Callback):
        pass

    clf = tiny(max_epochs=1, callbacks=[("noop", Noop())]).fit(left, right, y)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.callbacks is None
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


def test_unsaveable_parameter_is_refused_at_save_time(fitted, tmp_path):
    class MyAdam(torch.optim.Adam):
        pass

    clf = pickle.loads(pickle.dumps(fitted)).set_params(optimizer=MyAdam)
    with pytest.raises(ValueError, match="optimizer = .*MyAdam.* is not plain data"):
        clf.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_save_refuses_unfitted_model_and_a_file_path(fitted, tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        tiny().save(tmp_path / "m")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        fitted.save(tmp_path / "file")


def test_saving_twice_overwrites(fitted, people, tmp_path):
    left, right, y = people
    other = tiny(max_epochs=1, random_state=3).fit(left, right, y)
    fitted.save(tmp_path / "m")
    other.save(tmp_path / "m")
    np.testing.assert_array_equal(
        RecordPairClassifier.load(tmp_path / "m").predict_proba(left, right),
        other.predict_proba(left, right),
    )


# ---------------------------------------------------- training continues after load


def test_warm_start_after_load_continues_exactly(people, tmp_path):
    # Weights, optimizer moments and the shuffling generator are all restored, so
    # continuing after a save/load round trip equals continuing in memory.
    left, right, y = people
    clf = tiny(warm_start=True, early_stopping=False, max_epochs=1).fit(left, right, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.warm_start
    clf.fit(left, right, y)
    loaded.fit(left, right, y)
    assert len(loaded.net_.history_) == len(clf.net_.history_) == 2
    np.testing.assert_array_equal(
        loaded.predict_proba(left, right), clf.predict_proba(left, right)
    )


def test_resume_after_keyboard_interrupt_with_warm_start(people, tmp_path):
    left, right, y = people

    class InterruptInEpoch(Callback):
        def __init__(self, epoch):
            self.epoch = epoch

        def on_batch_end(self, net, **kwargs):
            if len(net.history) == self.epoch:
                raise KeyboardInterrupt

    clf = tiny(
        warm_start=True,
        early_stopping=False,
        max_epochs=3,
        callbacks=[("interrupt", InterruptInEpoch(2))],
    )
    clf.fit(left, right, y)  # skorch stops cleanly, the model is usable
    assert len(clf.net_.history_) == 2  # epoch 2 was cut short
    assert np.isfinite(clf.predict_proba(left, right)).all()
    # Save what we have, load it elsewhere and resume without the interruption:
    # warm_start runs max_epochs more epochs on top of the saved ones.
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        clf.save(tmp_path / "m")
    resumed = RecordPairClassifier.load(tmp_path / "m")
    vocabulary = resumed.vocabulary_
    resumed.fit(left, right, y)
    assert len(resumed.net_.history_) == 2 + 3
    assert resumed.vocabulary_ is vocabulary
    assert np.isfinite(resumed.predict_proba(left, right)).all()
    # In memory, the same resume works once the interrupting callback is removed.
    clf.set_params(callbacks=None)
    clf.net_.set_params(callbacks=None)
    clf.fit(left, right, y)
    assert len(clf.net_.history_) == 2 + 3


# ------------------------------------------------------------- refused inputs


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved model"):
        RecordPairClassifier.load(tmp_path / "nothing")


@pytest.mark.parametrize(
    "name",
    [
        "manifest.json",
        "config.json",
        "model.json",
        "weights.safetensors",
        "history.json",
    ],
)
def test_missing_file(copy, name):
    (copy / name).unlink()
    with pytest.raises(ValueError, match=f"{name} is missing"):
        RecordPairClassifier.load(copy)


def test_truncated_weights(copy):
    data = (copy / "weights.safetensors").read_bytes()
    (copy / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError,
        match="weights.safetensors has .* bytes where the manifest records .*truncated",
    ):
        RecordPairClassifier.load(copy)


def test_truncated_weights_with_a_matching_manifest(copy):
    data = (copy / "weights.safetensors").read_bytes()
    (copy / "weights.safetensors").write_bytes(data[: len(data) - 100])
    rehash(copy)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        RecordPairClassifier.load(copy)


def test_flipped_byte_in_weights(copy):
    data = bytearray((copy / "weights.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (copy / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(
        ValueError, match="checksum of weights.safetensors does not match"
    ):
        RecordPairClassifier.load(copy)


def test_edited_json(copy):
    # Same size, different content: only the checksum can tell.
    text = (copy / "config.json").read_text()
    (copy / "config.json").write_text(text.replace('"lr": 0.001', '"lr": 0.002'))
    with pytest.raises(ValueError, match="checksum of config.json does not match"):
        RecordPairClassifier.load(copy)
    # A different size is reported as such.
    edit_json(
        copy, "config.json", lambda c: c["params"].update(lr=0.5), fix_manifest=False
    )
    with pytest.raises(ValueError, match="config.json has .* bytes where the manifest"):
        RecordPairClassifier.load(copy)


class _Payload:
    """Unpickling this would create a marker file: it must never happen."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("fix_manifest", [False, True])
def test_weights_replaced_with_a_pickle_are_never_unpickled(
    copy, tmp_path, fix_manifest
):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    (copy / "weights.safetensors").write_bytes(pickle.dumps(payload))
    if fix_manifest:
        rehash(copy)
    match = "not a valid safetensors file" if fix_manifest else "weights.safetensors"
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier.load(copy)
    assert not marker.exists()


def test_pickle_file_instead_of_a_model(fitted, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(fitted))
    with pytest.raises(ValueError, match="neither a directory .* nor a zip"):
        RecordPairClassifier.load(path)


@pytest.mark.parametrize(
    "where, edit, match",
    [
        ("model.json", lambda m: m.update(extra=1), r"unknown key\(s\) \['extra'\]"),
        (
            "model.json",
            lambda m: m["featurizer"]["encoder"].update(lowercase=True),
            r"'encoder' has unknown key",
        ),
        (
            "config.json",
            lambda c: c.update(comment="hi"),
            r"unknown key\(s\) \['comment'\]",
        ),
        (
            "config.json",
            lambda c: c["params"].update(attention_heads=4),
            r"parameter\(s\) \['attention_heads'\], which this version",
        ),
        (
            "config.json",
            lambda c: c["params"].update(batch_size=-3),
            "batch_size must be a positive integer",
        ),
        (
            "config.json",
            lambda c: c["params"].update(batch_size=10**30),
            "batch_size must be a positive integer up to 2147483647",
        ),
        (
            "config.json",
            lambda c: c["params"].update(device="meta"),
            r"device must be a torch device .*\(not 'meta'\); got 'meta'",
        ),
        (
            "config.json",
            lambda c: c["params"].update(optimizer={"__optimizer__": "os"}),
            "not a torch.optim optimizer",
        ),
        (
            "config.json",
            lambda c: c["params"].update(lr={"__import__": "os.system"}),
            "unexpected value",
        ),
        (
            "model.json",
            lambda m: m["featurizer"].pop("vocabulary"),
            r"'featurizer' lacks the key\(s\) \['vocabulary'\]",
        ),
        (
            "model.json",
            lambda m: m["featurizer"]["vocabulary"]["words"].pop(),
            "n_words=.* does not match",
        ),
        (
            "model.json",
            lambda m: m["featurizer"]["vocabulary"]["words"].__setitem__(0, "x"),
            "must start with",
        ),
        (
            "model.json",
            lambda m: m["estimator"]["classes"].update(dtype="<M8[ns]"),
            "unsupported dtype",
        ),
        (
            "model.json",
            lambda m: m["estimator"]["classes"].update(values=[0, "a"]),
            "do not fit the dtype",
        ),
        (
            "model.json",
            lambda m: m["network"]["arguments"].update(field_hidden_size=9),
            "weight .* has shape",
        ),
        (
            "model.json",
            lambda m: m["network"]["arguments"].update(evil=1),
            "unknown argument",
        ),
        (
            "model.json",
            lambda m: m["featurizer"]["fields"].append(["x", None, None]),
            "invalid field",
        ),
        (
            "model.json",
            lambda m: m["network"]["shared_weights"].update(a="b"),
            "shared weight",
        ),
        (
            "model.json",
            lambda m: m["network"].update(optimizer=None),
            "optimizer tensors without an optimizer state",
        ),
        (
            "model.json",
            lambda m: m["featurizer"].pop("tfidf"),
            "'tfidf' must hold the TF-IDF weights",
        ),
        (
            "model.json",
            lambda m: next(iter(m["featurizer"]["tfidf"].values()))["tfidf_cosine"][
                "idf"
            ].pop(),
            "'tfidf' is malformed",
        ),
        ("history.json", lambda h: None, None),
    ],
)
def test_edited_json_with_a_matching_manifest(copy, where, edit, match):
    edit_json(copy, where, edit)
    if match is None:  # re-serialised but unchanged: still loads
        RecordPairClassifier.load(copy)
        return
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier.load(copy)


def test_weights_with_wrong_dtype_or_extra_tensors(copy):
    from safetensors.torch import load_file, save_file

    tensors = load_file(copy / "weights.safetensors")
    first = next(k for k in tensors if k.startswith("module."))
    save_file({**tensors, first: tensors[first].double()}, copy / "weights.safetensors")
    rehash(copy)
    with pytest.raises(ValueError, match="dtype torch.float64"):
        RecordPairClassifier.load(copy)
    save_file({**tensors, "module.extra": torch.zeros(2)}, copy / "weights.safetensors")
    rehash(copy)
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        RecordPairClassifier.load(copy)
    save_file({**tensors, "surprise": torch.zeros(2)}, copy / "weights.safetensors")
    rehash(copy)
    with pytest.raises(ValueError, match="unknown tensors \\['surprise'\\]"):
        RecordPairClassifier.load(copy)


def test_manifest_problems(copy):
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not valid JSON"):
        RecordPairClassifier.load(copy)
    (copy / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="does not describe a"):
        RecordPairClassifier.load(copy)


def test_newer_format_fails_naming_both_versions(copy):
    edit_json(
        copy,
        "manifest.json",
        lambda m: m.update(
            format_version=FORMAT_VERSION + 1, skrecordpair_version="9.0.0"
        ),
        fix_manifest=False,
    )
    with pytest.raises(
        ValueError,
        match=(
            f"saved by skrecordpair 9.0.0 in format version {FORMAT_VERSION + 1}; "
            f"skrecordpair {__version__} reads format versions up to {FORMAT_VERSION}"
        ),
    ):
        RecordPairClassifier.load(copy)


def test_older_version_with_fewer_parameters_loads_with_defaults(copy, fitted, people):
    # A model from a version that predates a parameter gets that parameter's default.
    edit_json(copy, "config.json", lambda c: c["params"].pop("verbose"))
    edit_json(
        copy,
        "manifest.json",
        lambda m: m.update(skrecordpair_version="0.0.1"),
        fix_manifest=False,
    )
    loaded = RecordPairClassifier.load(copy)
    assert loaded.verbose == 0
    np.testing.assert_array_equal(
        loaded.predict_proba(*people[:2]), fitted.predict_proba(*people[:2])
    )


def test_error_names_the_saving_and_loading_versions(copy):
    edit_json(copy, "model.json", lambda m: m.update(extra=1))
    edit_json(
        copy,
        "manifest.json",
        lambda m: m.update(skrecordpair_version="0.0.1"),
        fix_manifest=False,
    )
    with pytest.raises(
        ValueError,
        match=f"saved by skrecordpair 0.0.1, loaded by skrecordpair {__version__}",
    ):
        RecordPairClassifier.load(copy)


def test_tampered_zip(fitted, tmp_path):
    path = tmp_path / "model.zip"
    fitted.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        RecordPairClassifier.load(tmp_path / "cut.zip")
    with (
        zipfile.ZipFile(path) as src,
        zipfile.ZipFile(tmp_path / "edit.zip", "w") as dst,
    ):
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "config.json":
                content = content.replace(b'"lr": 0.001', b'"lr": 0.002')
            dst.writestr(info, content)
    with pytest.raises(ValueError, match="checksum of config.json"):
        RecordPairClassifier.load(tmp_path / "edit.zip")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_model_loads_on_the_cpu_with_a_warning(copy, fitted, people):
    edit_json(copy, "config.json", lambda c: c["params"].update(device="cuda"))
    with pytest.warns(UserWarning, match="CUDA is not available"):
        loaded = RecordPairClassifier.load(copy)
    assert loaded.device == "cpu"
    explicit = RecordPairClassifier.load(copy, device="cpu")
    np.testing.assert_array_equal(
        explicit.predict_proba(*people[:2]), fitted.predict_proba(*people[:2])
    )


def test_load_refuses_a_device_without_data(saved):
    with pytest.raises(
        ValueError, match=r"device must be a torch device .*; got 'meta'"
    ):
        RecordPairClassifier.load(saved, device="meta")


def test_load_does_not_warn(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecordPairClassifier.load(saved)


# ------------------------------------------- hostile files: bounded reads, no hang

_LOAD_ALL = textwrap.dedent("""
    import json, signal, sys, time
    import safetensors.torch, skops.io, skorch, sklearn.ensemble  # imports before measuring
    from skrecordpair import RecordPairClassifier

    def timeout(*args):
        raise TimeoutError("load did not return")

    signal.signal(signal.SIGALRM, timeout)
    def peak_kib():  # VmHWM: ru_maxrss carries the parent's peak over fork and exec
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    RecordPairClassifier.load(sys.argv[2])  # a valid model first: imports, first calls
    start = peak_kib()
    results = {}
    for name, path in json.loads(sys.argv[1]).items():
        began = time.perf_counter()
        signal.alarm(20)
        try:
            RecordPairClassifier.load(path)
            error = None
        except (ValueError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        signal.alarm(0)
        peak = peak_kib()
        results[name] = {"error": error, "seconds": time.perf_counter() - began,
                         "grew_mib": (peak - start) / 1024}
    print(json.dumps(results))
""")


def _zip_member_stream(archive, name, size, chunk=b"\0" * (1 << 20)):
    """Write `size` bytes of zeros to a deflated member without holding them."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)


def _write_manifest_entry(path, name, size, sha256="0" * 64):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": size, "sha256": sha256}
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def hostile(saved, tmp_path_factory):
    """Crafted models, each loaded once in a fresh process: error, time, peak memory."""
    root = tmp_path_factory.mktemp("hostile")
    cases = {}

    def case(name):
        target = root / name
        shutil.copytree(saved, target)
        cases[name] = target
        return target

    # A zip bomb: 128 MiB of zeros in a deflated weights member (about 128 KB).
    bomb = root / "bomb.zip"
    source = case("bomb_source")
    _write_manifest_entry(source, "weights.safetensors", 128 << 20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in (
            "manifest.json",
            "config.json",
            "model.json",
            "history.json",
            "prior.skops",
        ):
            archive.write(source / name, name)
        _zip_member_stream(archive, "weights.safetensors", 128 << 20)
    cases["zip_bomb"] = bomb
    del cases["bomb_source"]

    # A skops prior whose schema is padded to 128 MiB (valid JSON: trailing blanks).
    prior = case("skops_bomb")
    with (
        zipfile.ZipFile(saved / "prior.skops") as src,
        zipfile.ZipFile(
            prior / "prior.skops", "w", zipfile.ZIP_DEFLATED, compresslevel=1
        ) as dst,
    ):
        for info in src.infolist():
            if info.filename == "schema.json":
                schema, padded = src.read(info), zipfile.ZipInfo("schema.json")
                padded.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(padded, "w", force_zip64=True) as f:
                    f.write(schema)
                    blank = b" " * (1 << 20)
                    for _ in range(128):
                        f.write(blank)
            else:
                dst.writestr(info, src.read(info))
    rehash(prior)

    fifo = case("fifo")
    (fifo / "manifest.json").unlink()
    os.mkfifo(fifo / "manifest.json")

    zero = case("dev_zero")
    (zero / "weights.safetensors").unlink()
    (zero / "weights.safetensors").symlink_to("/dev/zero")
    _write_manifest_entry(zero, "weights.safetensors", 1 << 30)

    wide = case("huge_word_dim")
    edit_json(
        wide,
        "model.json",
        lambda m: m["network"]["arguments"].update(word_dim=10_000_000),
    )

    paths = json.dumps({name: str(path) for name, path in cases.items()})
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_ALL, paths, str(saved)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, match",
    [
        ("zip_bomb", r"weights.safetensors .*134217728 bytes.* at most"),
        ("skops_bomb", r"prior.skops .*schema.json.* at most"),
        ("fifo", r"manifest.json is not a regular file"),
        ("dev_zero", r"weights.safetensors is a symbolic link"),
        ("huge_word_dim", r"word_embedding.weight"),
    ],
)
def test_hostile_file_is_refused_quickly_in_bounded_memory(hostile, name, match):
    result = hostile[name]
    assert result["error"] is not None and result["error"].startswith("ValueError"), (
        result
    )
    assert re.search(match, result["error"]), result["error"]
    assert result["seconds"] < 5, result
    assert result["grew_mib"] < 64, result


def test_zip_member_larger_than_the_manifest_records_is_refused(fitted, tmp_path):
    path = tmp_path / "model.zip"
    fitted.save(path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "x.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(
                info, data + b" " * 10 if info.filename == "config.json" else data
            )
    with pytest.raises(ValueError, match=r"config.json .*\d+ bytes.* manifest records"):
        RecordPairClassifier.load(tmp_path / "x.zip")


def test_oversized_json_is_refused_before_it_is_read(copy):
    (copy / "history.json").write_bytes(b"[" + b" " * (80 << 20) + b"]")
    rehash(copy)
    with pytest.raises(ValueError, match=r"history.json .* at most \d+ bytes"):
        RecordPairClassifier.load(copy)


def _edit_weights(path, edit):
    from safetensors.torch import load_file, save_file

    tensors = load_file(path / "weights.safetensors")
    edit(tensors)
    save_file(tensors, path / "weights.safetensors")
    rehash(path)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda t: t.update({"criterion.weight": torch.ones(5)}),
            r"criterion.weight has shape \(5,\)",
        ),
        (
            lambda t: t.update({"optimizer.0.exp_avg": torch.zeros(())}),
            r"optimizer.0.exp_avg has shape \(\)",
        ),
        (
            lambda t: t.update({"optimizer.0.step": torch.zeros(3)}),
            r"optimizer.0.step has shape \(3,\)",
        ),
        (
            lambda t: t.update(
                {"optimizer.0.exp_avg_sq": t["optimizer.0.exp_avg_sq"].double()}
            ),
            r"optimizer.0.exp_avg_sq has .*dtype torch.float64",
        ),
        (
            lambda t: t["optimizer.1.exp_avg"].view(-1)[0:1].fill_(float("nan")),
            r"optimizer.1.exp_avg holds values that are not finite",
        ),
        (
            lambda t: (
                next(v for k, v in t.items() if k.startswith("module."))
                .view(-1)[0:1]
                .fill_(float("inf"))
            ),
            r"module\..* not finite",
        ),
        (
            lambda t: t.update({"generator.state": torch.zeros(3, dtype=torch.uint8)}),
            r"generator.state has shape \(3,\)",
        ),
    ],
)
def test_tensors_of_the_wrong_shape_dtype_or_value_are_refused(
    people, tmp_path, edit, match
):
    left, right, y = people
    clf = tiny(max_epochs=1, warm_start=True, class_weight="balanced").fit(
        left, right, y
    )
    clf.save(tmp_path / "m")
    _edit_weights(tmp_path / "m", edit)
    with pytest.raises(ValueError, match=match):
        RecordPairClassifier.load(tmp_path / "m")


# --------------------------------------------- saving never destroys the last model


@contextlib.contextmanager
def _file_size_limit(n_bytes):
    """Make every write beyond `n_bytes` in a file fail (EFBIG), as a full disk would."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("archive", [False, True], ids=["directory", "zip"])
def test_failed_save_leaves_the_previous_model_and_no_temporary_files(
    fitted, people, tmp_path, archive
):
    left, right, y = people
    path = tmp_path / ("model.zip" if archive else "model")
    fitted.save(path)
    other = tiny(max_epochs=1, random_state=3, similarity_prior=False).fit(
        left, right, y
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    # Larger than the small JSON files, smaller than model.json and the weights:
    # the write fails part-way through the save.
    with _file_size_limit(4096), pytest.raises(OSError):
        other.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if not archive:
        assert sorted(p.name for p in path.iterdir()) == sorted(
            [
                "config.json",
                "history.json",
                "manifest.json",
                "model.json",
                "prior.skops",
                "weights.safetensors",
            ]
        )
    np.testing.assert_array_equal(
        RecordPairClassifier.load(path).predict_proba(left, right),
        fitted.predict_proba(left, right),
    )


def test_zip_save_does_not_follow_a_planted_temporary_symlink(fitted, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "model.zip.tmp").symlink_to(victim)
    fitted.save(tmp_path / "model.zip")
    assert victim.read_text() == "precious"
    RecordPairClassifier.load(tmp_path / "model.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.zip",
        "model.zip.tmp",
        "victim.txt",
    ]


def test_directory_save_does_not_follow_a_planted_temporary_symlink(fitted, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "config.json.tmp").symlink_to(victim)
    with pytest.raises(ValueError, match=r"config.json.tmp"):
        fitted.save(tmp_path / "m")
    assert victim.read_text() == "precious"
    RecordPairClassifier.load(tmp_path / "m")


@pytest.mark.parametrize("archive", [False, True], ids=["directory", "zip"])
def test_two_saves_to_one_path_at_once_both_succeed(
    fitted, people, tmp_path, monkeypatch, archive
):
    left, right, y = people
    path = tmp_path / ("model.zip" if archive else "model")
    other = tiny(max_epochs=1, random_state=3).fit(left, right, y)
    fitted.save(path)
    nested = []

    def second_save():
        # The second save runs, start to finish, while the first one is writing.
        if not nested:
            nested.append(True)
            other.save(path)

    real_write = zipfile.ZipFile.writestr

    def write_during_save(self, name, *args, **kwargs):
        real_write(self, name, *args, **kwargs)
        if str(getattr(name, "filename", name)) == "weights.safetensors":
            second_save()

    real_open = builtins.open

    def open_during_save(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "model.json" in str(file) and ("w" in mode or "x" in mode):
            second_save()
        return f

    monkeypatch.setattr(zipfile.ZipFile, "writestr", write_during_save)
    monkeypatch.setattr(builtins, "open", open_during_save)
    monkeypatch.setattr(io, "open", open_during_save)
    fitted.save(path)
    np.testing.assert_array_equal(
        RecordPairClassifier.load(path).predict_proba(left, right),
        fitted.predict_proba(left, right),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize(
    "make",
    [
        lambda d: (d / "manifest.json").write_text(
            '{"name": "my web app", "icons": []}'
        ),
        lambda d: (d / "manifest.json").write_text("not json at all"),
        lambda d: (d / "manifest.json").symlink_to(d.parent / "elsewhere.json"),
    ],
    ids=["web_app_manifest", "not_json", "symlink"],
)
def test_save_refuses_a_directory_whose_manifest_is_not_a_saved_models(
    fitted, tmp_path, make
):
    # Probe 2, D15 leftover: only the names were checked, so a web app's
    # manifest.json and config.json were replaced whole, silently.
    (tmp_path / "elsewhere.json").write_text(
        '{"format": "skrecordpair.RecordPairClassifier"}'
    )
    target = tmp_path / "site"
    target.mkdir()
    make(target)
    (target / "config.json").write_text('{"theme": "dark"}')
    with pytest.raises(ValueError, match=r"not a saved model.*manifest.json"):
        fitted.save(target)
    assert (target / "config.json").read_text() == '{"theme": "dark"}'


def test_save_refuses_a_directory_with_a_subdirectory_of_a_saved_name(fitted, tmp_path):
    # Probe 2: a user's subdirectory named history.json was deleted with its files.
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "history.json").unlink()
    (tmp_path / "m" / "history.json").mkdir()
    (tmp_path / "m" / "history.json" / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"not a saved model.*history.json"):
        fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "history.json" / "mine.txt").read_text() == "keep"


@pytest.mark.slow
def test_loads_during_directory_resaves_always_see_one_whole_model(
    fitted, people, tmp_path
):
    # N7: while one process re-saved a directory model, 144 of 165 loads
    # failed ("weights.safetensors is missing", "No saved model").
    import threading

    left, right, y = people
    other = tiny(max_epochs=1, random_state=3).fit(left, right, y)
    expected = [m.predict_proba(left[:20], right[:20]) for m in (fitted, other)]
    path = tmp_path / "served"
    fitted.save(path)
    done = threading.Event()
    saves = []

    def resave():
        try:
            for i in range(60):
                (other if i % 2 else fitted).save(path)
                saves.append(i)
        finally:
            done.set()

    thread = threading.Thread(target=resave)
    thread.start()
    failures, loads = [], 0
    try:
        while not done.is_set():
            try:
                model = RecordPairClassifier.load(path)
            except (OSError, ValueError) as exc:
                failures.append(str(exc))
                continue
            loads += 1
            proba = model.predict_proba(left[:20], right[:20])
            assert any(np.array_equal(proba, e) for e in expected)
    finally:
        thread.join()
    assert len(saves) == 60 and loads >= 2
    assert failures == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_a_save_killed_between_its_renames_leaves_a_hint(fitted, tmp_path, monkeypatch):
    # N7: where two directories cannot be exchanged in one step, a save killed
    # between its two renames left nothing at the path and load said only
    # "No saved model".
    from skrecordpair import _persistence

    fitted.save(tmp_path / "m")
    monkeypatch.setattr(_persistence, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def killed(src, dst):
        if str(src).endswith(".tmp"):
            raise KeyboardInterrupt  # the process dies here
        real_rename(src, dst)

    monkeypatch.setattr(_persistence.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(tmp_path / "m")
    monkeypatch.undo()
    assert not (tmp_path / "m").exists()
    with pytest.raises(
        FileNotFoundError,
        match=r"a save to it was interrupted.*\.m\..*"
        r"\.old.*Rename one of them to m",
    ):
        RecordPairClassifier.load(tmp_path / "m")


def test_load_refuses_a_weights_file_beyond_max_weights_bytes(saved):
    # N4: the only bound was four times the network that model.json describes.
    size = (saved / "weights.safetensors").stat().st_size
    with pytest.raises(
        ValueError,
        match=rf"recorded as {size} bytes; load reads at most "
        r"1000 bytes.*max_weights_bytes",
    ):
        RecordPairClassifier.load(saved, max_weights_bytes=1000)
    RecordPairClassifier.load(saved, max_weights_bytes=size)
    with pytest.raises(
        ValueError, match=r"max_weights_bytes must be a positive integer"
    ):
        RecordPairClassifier.load(saved, max_weights_bytes=0)


def test_save_refuses_a_directory_with_other_files(fitted, tmp_path):
    target = tmp_path / "project"
    target.mkdir()
    (target / "config.json").write_text('{"mine": true}')
    (target / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"not a saved model.*config.json.*notes.txt"):
        fitted.save(target)
    assert (target / "config.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "notes.txt"]
    fitted.save(tmp_path / "empty_dir_is_fine")  # created
    (tmp_path / "empty").mkdir()
    fitted.save(tmp_path / "empty")
    RecordPairClassifier.load(tmp_path / "empty")


def test_datetime_labels_are_refused_with_a_clear_error(tmp_path):
    left, right, _ = make_people_pairs(60, seed=1)
    y = np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[ns]")[
        np.arange(60) % 2
    ]
    clf = tiny(max_epochs=1, early_stopping=False).fit(left, right, y)
    with pytest.raises(ValueError, match=r"class labels .*datetime64"):
        clf.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ------------------ crafted files of reliability probe 2 (N2, N4): peak memory

# What docs/persistence.rst promises ("What load reads at most"): beyond the
# imported libraries, load's peak memory stays within _JSON_PEAK_MIB plus
# twice the weights it reads (at most max_weights_bytes).
_JSON_PEAK_MIB = 512

_LOAD_EACH = textwrap.dedent("""
    import gc, json, sys, time
    import safetensors.torch, skops.io, skorch, sklearn.ensemble  # imports before measuring
    from skrecordpair import RecordPairClassifier

    # The peak RSS of this process image (VmHWM). ru_maxrss would not do: Linux
    # carries the parent's peak over to a child across fork and exec.
    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024

    def reset_peak():  # 5: reset the peak RSS to the current RSS
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    RecordPairClassifier.load(sys.argv[2])  # a valid model first: imports, first calls
    gc.collect()
    first = status("VmRSS:")
    results = {}
    for name, (path, kwargs) in json.loads(sys.argv[1]).items():
        gc.collect()
        # Without a reset the figure is the running peak since `first`.
        base = status("VmRSS:") if reset_peak() else first
        began = time.perf_counter()
        try:
            model = RecordPairClassifier.load(path, **kwargs)
            error = None
        except (ValueError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        model = None
        results[name] = {"error": error, "seconds": time.perf_counter() - began,
                         "peak_mib": status("VmHWM:") - base}
    print(json.dumps(results))
""")


def _json_list_of(items, n):
    """A JSON list of `n` copies of the JSON text `items`, as bytes."""
    return b"[" + (items + b",") * (n - 1) + items + b"]"


def _put(path, name, data):
    (path / name).write_bytes(data)
    rehash(path)


def _zip_directory(source, target, method, **kwargs):
    with zipfile.ZipFile(target, "w", method, **kwargs) as archive:
        for member in sorted(source.iterdir()):
            archive.write(member, member.name)
    return target


def _big_network(path, word_dim):
    """Make the saved model at `path` describe a network of `word_dim`, with
    zero weights and optimizer moments of the right shapes: a correctly
    described large network (the probe's 549 KB zip, N4)."""
    from safetensors.torch import load_file, save_file

    from skrecordpair._matcher.net_state import _blueprint, network_arguments

    model = json.loads((path / "model.json").read_text())
    model["network"]["arguments"]["word_dim"] = word_dim
    (path / "model.json").write_text(json.dumps(model))
    blueprint = _blueprint(network_arguments(model["network"]["arguments"]))
    shapes = {f"module.{k}": v.shape for k, v in blueprint.state_dict().items()}
    params = list(blueprint.parameters())
    tensors = load_file(path / "weights.safetensors")
    for key, tensor in tensors.items():
        if key in shapes:
            tensors[key] = torch.zeros(shapes[key], dtype=tensor.dtype)
        elif key.startswith("optimizer.") and key.split(".")[2] in (
            "exp_avg",
            "exp_avg_sq",
        ):
            tensors[key] = torch.zeros(params[int(key.split(".")[1])].shape)
    save_file(tensors, path / "weights.safetensors")
    rehash(path)
    return (path / "weights.safetensors").stat().st_size


@pytest.fixture(scope="module")
def probe_files(saved, tmp_path_factory):
    """The crafted files of reliability probe 2 (N2, N4), each loaded in one
    fresh process: error, time and the process's peak memory."""
    root = tmp_path_factory.mktemp("probe2")
    cases = {}

    def case(name, kwargs=None):
        target = root / name
        shutil.copytree(saved, target)
        cases[name] = (str(target), kwargs or {})
        return target

    # N2, the 43 KB zip: model.json of `[],` under an unknown key and a
    # history.json of `{},`, bzip2-compressed.
    bomb = case("bzip2_bomb_source")
    model = (bomb / "model.json").read_bytes().rstrip().rstrip(b"}")
    _put(bomb, "model.json", model + b', "x": ' + _json_list_of(b"[]", 2 << 20) + b"}")
    _put(bomb, "history.json", _json_list_of(b"{}", 2 << 20))
    cases["bzip2_bomb"] = (
        str(_zip_directory(bomb, root / "bomb.zip", zipfile.ZIP_BZIP2)),
        {},
    )
    del cases["bzip2_bomb_source"]

    # The same JSON within the byte caps, deflated as save() writes: the values
    # are counted before parsing.
    values = case("model_json_values")
    _put(
        values, "model.json", model + b', "x": ' + _json_list_of(b"[]", 20 << 20) + b"}"
    )
    cases["model_json_values"] = (
        str(
            _zip_directory(
                values, root / "values.zip", zipfile.ZIP_DEFLATED, compresslevel=1
            )
        ),
        {},
    )
    history = case("history_values")  # 5.6 M empty objects: the probe kept 2 GB
    _put(history, "history.json", _json_list_of(b"{}", (16 << 20) // 3 - 1))
    schema = case("skops_schema_values")
    with (
        zipfile.ZipFile(saved / "prior.skops") as src,
        zipfile.ZipFile(schema / "prior.skops", "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "schema.json":
                data = (
                    data.rstrip().rstrip(b"}")
                    + b', "x": '
                    + _json_list_of(b"[]", 4 << 20)
                    + b"}"
                )
            dst.writestr(info.filename, data)
    rehash(schema)

    # At the limits, the worst a file can do: a model.json of 64 MiB with as
    # many values as allowed (a long string and empty lists, refused for its
    # unknown key once parsed), a history of as many empty objects as allowed
    # (loads).
    worst = case("model_json_at_limit")
    head = model + b', "x": ["' + b"a" * (40 << 20) + b'", '
    n = 2_000_000 - _json_values_of(head) - 10
    _put(worst, "model.json", head + _json_list_of(b"[]", n // 2) + b"]}")
    assert len((worst / "model.json").read_bytes()) <= 64 << 20
    full = case("history_at_limit")
    _put(full, "history.json", _json_list_of(b"{}", 1_000_000 // 2 - 1))
    # Both at once, loaded: the values under a fitted attribute, which load
    # keeps, and a history of short strings.
    both = case("all_json_at_limit")
    parsed = json.loads(model + b"}")
    parsed["estimator"]["attributes"]["padding_"] = "@"
    head, tail = json.dumps(parsed).encode().split(b'"@"')
    head += b'["' + b"a" * (40 << 20) + b'", '
    n = 2_000_000 - _json_values_of(head + tail) - 10
    _put(both, "model.json", head + _json_list_of(b"[]", n // 2) + b"]" + tail)
    assert len((both / "model.json").read_bytes()) <= 64 << 20
    _put(both, "history.json", _json_list_of(b'"ab"', 1_000_000 - 1))

    # N4: the weights' limit no longer comes from the file. A network described
    # as needing 1.5 GiB (a sparse file: nothing is written) is refused before
    # it is read; a correctly described one of about 300 MiB of zeros loads
    # within twice the limit the caller gives.
    sparse = case("weights_over_limit")
    with open(sparse / "weights.safetensors", "r+b") as f:
        f.truncate(3 << 29)
    rehash_sizes_only(sparse, "weights.safetensors")
    big = case("big_network", {"max_weights_bytes": 320 << 20})
    size = _big_network(big, word_dim=200_000)
    assert 200 << 20 < size <= 320 << 20, size

    paths = json.dumps(cases)
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_EACH, paths, str(saved)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _json_values_of(data):
    from skrecordpair._persistence import _json_values

    return _json_values(data)


def rehash_sizes_only(path, name):
    """Record `name`'s size in the manifest without reading it (a checksum of
    zeros: the size check comes first)."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = {
        "bytes": (path / name).stat().st_size,
        "sha256": "0" * 64,
    }
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, match",
    [
        ("bzip2_bomb", r"compressed with zip method 12"),
        (
            "model_json_values",
            r"model.json holds up to \d+ JSON values.* at most 2000000",
        ),
        (
            "history_values",
            r"history.json holds up to \d+ JSON values.* at most 1000000",
        ),
        ("skops_schema_values", r"schema.json holds up to \d+ JSON values"),
        ("model_json_at_limit", r"unknown key\(s\) \['x'\]"),
        ("history_at_limit", None),
        ("all_json_at_limit", r"history.json must be a list of epochs"),
        (
            "weights_over_limit",
            r"load reads at most 1073741824 bytes of weights.*"
            r"max_weights_bytes",
        ),
        ("big_network", None),
    ],
)
def test_crafted_files_of_probe_2_stay_within_the_documented_memory(
    probe_files, name, match
):
    # N2: a 43 KB zip peaked at +8.5 GiB; a history of empty objects loaded
    # with 2 GB resident. N4: a 549 KB zip loaded with a network of the
    # file's choosing (+1.1 GiB). The figures are the child's running peak.
    result = probe_files[name]
    if match is None:
        assert result["error"] is None, result
    else:
        assert result["error"] is not None and re.search(match, result["error"]), result
    weights = 320 if name == "big_network" else 0
    assert result["peak_mib"] < _JSON_PEAK_MIB + 2 * weights, result


def test_a_weights_header_of_many_values_is_refused_before_parsing(copy):
    # N2: the safetensors header is JSON too; its values are counted first.
    header = b'{"__metadata__": {"x": ' + _json_list_of(b"[]", 200_000) + b"}}"
    data = len(header).to_bytes(8, "little") + header
    _put(copy, "weights.safetensors", data)
    with pytest.raises(
        ValueError,
        match=r"header holds up to \d+ JSON values; a "
        r"network's takes at most 100000",
    ):
        RecordPairClassifier.load(copy)
