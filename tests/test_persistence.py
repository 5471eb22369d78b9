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
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  fitted.predict_proba(left, right))
    np.testing.assert_array_equal(loaded.predict(left, right), fitted.predict(left, right))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.fields_ == fitted.fields_
    assert loaded.vocabulary_ == fitted.vocabulary_
    assert loaded.n_features_in_ == fitted.n_features_in_
    np.testing.assert_array_equal(loaded.feature_names_in_, fitted.feature_names_in_)
    assert loaded.classes_.dtype == fitted.classes_.dtype
    assert len(loaded.net_.history_) == len(fitted.net_.history_)
    assert loaded.numeric_fields_ == fitted.numeric_fields_
    assert type(loaded.prior_) is type(fitted.prior_)


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
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  plain.predict_proba(left, right))


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
    manifest["files"]["prior.skops"] = {"bytes": len(data),
                                        "sha256": hashlib.sha256(data).hexdigest()}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="prior.skops"):
        RecordPairClassifier.load(copy)


def test_directory_holds_plain_data_only(saved):
    names = sorted(p.name for p in saved.iterdir())
    assert names == ["config.json", "history.json", "manifest.json", "model.json",
                     "prior.skops", "weights.safetensors"]
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
    np.testing.assert_array_equal(restored.predict_proba(left, right),
                                  fitted.predict_proba(left, right))
    pd.testing.assert_frame_equal(loaded.explain(left[:3], right[:3], n_steps=8),
                                  fitted.explain(left[:3], right[:3], n_steps=8))


@pytest.mark.parametrize("share", [True, False])
def test_shared_matching_weights_stay_shared(people, tmp_path, share):
    left, right, y = people
    clf = tiny(share_matching_weights=share, max_epochs=1).fit(left, right, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    for which in ("matcher_forward", "matcher_backward"):
        matcher = getattr(loaded.net_.module_, which)
        same = matcher.attentive_match_weights is matcher.attentive_match_weights_reversed
        assert same == share
        original = getattr(clf.net_.module_, which)
        torch.testing.assert_close(matcher.attentive_match_weights_reversed,
                                   original.attentive_match_weights_reversed,
                                   rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  clf.predict_proba(left, right))


@pytest.mark.parametrize("labels", [
    np.array(["match", "maybe", "no"]),                      # numpy unicode
    pd.Series(["match", "maybe", "no"], dtype=object),     # object
    np.array([-1, 3, 10**12]),                              # int64
    np.array([False, True, True]),                          # bool
])
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
        fields=[("name", "fullname"), "city", ("year", None)], max_epochs=1,
        hidden_layer_sizes=(6, 4), forward_matching=("full",), backward_matching=(),
        class_weight={0: 1.0, 1: 2.5}, optimizer=torch.optim.AdamW,
        device=torch.device("cpu"), char_encoder="gru", field_encoder="cnn",
        aggregator="lstm", max_vocabulary=None, prepend_field_names=True,
    ).fit(X, y)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    params = loaded.get_params()
    assert params["fields"] == [("name", "fullname"), "city", ("year", None)]
    assert params["hidden_layer_sizes"] == (6, 4) and params["backward_matching"] == ()
    assert params["class_weight"] == {0: 1.0, 1: 2.5}
    assert params["optimizer"] is torch.optim.AdamW
    assert params["device"] == "cpu" and params["max_vocabulary"] is None
    torch.testing.assert_close(loaded.net_.criterion_.weight, clf.net_.criterion_.weight)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_set_params_after_fit_keeps_the_fitted_architecture(people, tmp_path):
    # The saved network is the fitted one, even if parameters changed afterwards.
    left, right, y = people
    clf = tiny(max_epochs=1).fit(left, right, y)
    clf.set_params(field_hidden_size=3, max_tokens_per_field=2)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.field_hidden_size == 3 and loaded.max_tokens_per_field == 2
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  clf.predict_proba(left, right))


def test_callbacks_are_dropped_with_a_warning(people, tmp_path):
    left, right, y = people

    class Noop(Callback):
        pass

    clf = tiny(max_epochs=1, callbacks=[("noop", Noop())]).fit(left, right, y)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.callbacks is None
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  clf.predict_proba(left, right))


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
    np.testing.assert_array_equal(RecordPairClassifier.load(tmp_path / "m")
                                  .predict_proba(left, right),
                                  other.predict_proba(left, right))


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
    np.testing.assert_array_equal(loaded.predict_proba(left, right),
                                  clf.predict_proba(left, right))


def test_resume_after_keyboard_interrupt_with_warm_start(people, tmp_path):
    left, right, y = people

    class InterruptInEpoch(Callback):
        def __init__(self, epoch):
            self.epoch = epoch

        def on_batch_end(self, net, **kwargs):
            if len(net.history) == self.epoch:
                raise KeyboardInterrupt

    clf = tiny(warm_start=True, early_stopping=False, max_epochs=3,
               callbacks=[("interrupt", InterruptInEpoch(2))])
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


@pytest.mark.parametrize("name", ["manifest.json", "config.json", "model.json",
                                  "weights.safetensors", "history.json"])
def test_missing_file(copy, name):
    (copy / name).unlink()
    with pytest.raises(ValueError, match=f"{name} is missing"):
        RecordPairClassifier.load(copy)


def test_truncated_weights(copy):
    data = (copy / "weights.safetensors").read_bytes()
    (copy / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="weights.safetensors has .* bytes where the "
                                         "manifest records .*truncated"):
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
    with pytest.raises(ValueError, match="checksum of weights.safetensors does not "
                                         "match"):
        RecordPairClassifier.load(copy)


def test_edited_json(copy):
    # Same size, different content: only the checksum can tell.
    text = (copy / "config.json").read_text()
    (copy / "config.json").write_text(text.replace('"lr": 0.001', '"lr": 0.002'))
    with pytest.raises(ValueError, match="checksum of config.json does not match"):
        RecordPairClassifier.load(copy)
    # A different size is reported as such.
    edit_json(copy, "config.json", lambda c: c["params"].update(lr=0.5),
              fix_manifest=False)
    with pytest.raises(ValueError, match="config.json has .* bytes where the manifest"):
        RecordPairClassifier.load(copy)


class _Payload:
    """Unpickling this would create a marker file: it must never happen."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("fix_manifest", [False, True])
def test_weights_replaced_with_a_pickle_are_never_unpickled(copy, tmp_path,
                                                           fix_manifest):
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


@pytest.mark.parametrize("where, edit, match", [
    ("model.json", lambda m: m.update(extra=1), r"unknown key\(s\) \['extra'\]"),
    ("model.json", lambda m: m["encoder"].update(lowercase=True),
     r"'encoder' has unknown key"),
    ("config.json", lambda c: c.update(comment="hi"), r"unknown key\(s\) \['comment'\]"),
    ("config.json", lambda c: c["params"].update(attention_heads=4),
     r"parameter\(s\) \['attention_heads'\], which this version"),
    ("config.json", lambda c: c["params"].update(batch_size=-3),
     "batch_size must be a positive integer"),
    ("config.json", lambda c: c["params"].update(batch_size=10**30),
     "batch_size must be a positive integer up to 2147483647"),
    ("config.json", lambda c: c["params"].update(device="meta"),
     r"device must be a torch device .*\(not 'meta'\); got 'meta'"),
    ("config.json", lambda c: c["params"].update(optimizer={"__optimizer__": "os"}),
     "not a torch.optim optimizer"),
    ("config.json", lambda c: c["params"].update(lr={"__import__": "os.system"}),
     "unexpected value"),
    ("model.json", lambda m: m.pop("vocabulary"), r"lacks the key\(s\) \['vocabulary'\]"),
    ("model.json", lambda m: m["vocabulary"]["words"].pop(),
     "n_words=.* does not match"),
    ("model.json", lambda m: m["vocabulary"]["words"].__setitem__(0, "x"),
     "must start with"),
    ("model.json", lambda m: m["classes"].update(dtype="<M8[ns]"), "unsupported dtype"),
    ("model.json", lambda m: m["classes"].update(values=[0, "a"]), "do not fit the dtype"),
    ("model.json", lambda m: m["network"].update(field_hidden_size=9),
     "weight .* has shape"),
    ("model.json", lambda m: m["network"].update(evil=1), "unknown argument"),
    ("model.json", lambda m: m["fields"].append(["x", None, None]), "invalid field"),
    ("model.json", lambda m: m["shared_weights"].update(a="b"), "shared weight"),
    ("model.json", lambda m: m.update(optimizer=None),
     "optimizer tensors without an optimizer state"),
    ("model.json", lambda m: m.pop("tfidf"), "'tfidf' must hold the TF-IDF weights"),
    ("model.json", lambda m: next(iter(m["tfidf"].values()))["tfidf_cosine"]["idf"].pop(),
     "'tfidf' is malformed"),
    ("history.json", lambda h: None, None),
])
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
    edit_json(copy, "manifest.json", lambda m: m.update(
        format_version=FORMAT_VERSION + 1, skrecordpair_version="9.0.0"),
        fix_manifest=False)
    with pytest.raises(ValueError, match=(
            f"saved by skrecordpair 9.0.0 in format version {FORMAT_VERSION + 1}; "
            f"skrecordpair {__version__} reads format versions up to {FORMAT_VERSION}")):
        RecordPairClassifier.load(copy)


def test_older_version_with_fewer_parameters_loads_with_defaults(copy, fitted, people):
    # A model from a version that predates a parameter gets that parameter's default.
    edit_json(copy, "config.json", lambda c: c["params"].pop("verbose"))
    edit_json(copy, "manifest.json", lambda m: m.update(skrecordpair_version="0.0.1"),
              fix_manifest=False)
    loaded = RecordPairClassifier.load(copy)
    assert loaded.verbose == 0
    np.testing.assert_array_equal(loaded.predict_proba(*people[:2]),
                                  fitted.predict_proba(*people[:2]))


def test_error_names_the_saving_and_loading_versions(copy):
    edit_json(copy, "model.json", lambda m: m.update(extra=1))
    edit_json(copy, "manifest.json", lambda m: m.update(skrecordpair_version="0.0.1"),
              fix_manifest=False)
    with pytest.raises(ValueError, match=f"saved by skrecordpair 0.0.1, loaded by "
                                         f"skrecordpair {__version__}"):
        RecordPairClassifier.load(copy)


def test_tampered_zip(fitted, tmp_path):
    path = tmp_path / "model.zip"
    fitted.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        RecordPairClassifier.load(tmp_path / "cut.zip")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "edit.zip", "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "config.json":
                content = content.replace(b"\"lr\": 0.001", b"\"lr\": 0.002")
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
    np.testing.assert_array_equal(explicit.predict_proba(*people[:2]),
                                  fitted.predict_proba(*people[:2]))


def test_load_refuses_a_device_without_data(saved):
    with pytest.raises(ValueError, match=r"device must be a torch device .*; got 'meta'"):
        RecordPairClassifier.load(saved, device="meta")


def test_load_does_not_warn(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecordPairClassifier.load(saved)


# ------------------------------------------- hostile files: bounded reads, no hang

_LOAD_ALL = textwrap.dedent("""
    import json, resource, signal, sys, time
    import safetensors.torch, skops.io, skorch, sklearn.ensemble  # imports before measuring
    from skrecordpair import RecordPairClassifier

    def timeout(*args):
        raise TimeoutError("load did not return")

    signal.signal(signal.SIGALRM, timeout)
    RecordPairClassifier.load(sys.argv[2])  # a valid model first: imports, first calls
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
        for name in ("manifest.json", "config.json", "model.json", "history.json",
                     "prior.skops"):
            archive.write(source / name, name)
        _zip_member_stream(archive, "weights.safetensors", 128 << 20)
    cases["zip_bomb"] = bomb
    del cases["bomb_source"]

    # A skops prior whose schema is padded to 128 MiB (valid JSON: trailing blanks).
    prior = case("skops_bomb")
    with zipfile.ZipFile(saved / "prior.skops") as src, \
            zipfile.ZipFile(prior / "prior.skops", "w", zipfile.ZIP_DEFLATED,
                            compresslevel=1) as dst:
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
    edit_json(wide, "model.json", lambda m: m["network"].update(word_dim=10_000_000))

    paths = json.dumps({name: str(path) for name, path in cases.items()})
    run = subprocess.run([sys.executable, "-c", _LOAD_ALL, paths, str(saved)], check=False,
                         capture_output=True,
                         text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name, match", [
    ("zip_bomb", r"weights.safetensors .*134217728 bytes.* at most"),
    ("skops_bomb", r"prior.skops .*schema.json.* at most"),
    ("fifo", r"manifest.json is not a regular file"),
    ("dev_zero", r"weights.safetensors is a symbolic link"),
    ("huge_word_dim", r"word_embedding.weight"),
])
def test_hostile_file_is_refused_quickly_in_bounded_memory(hostile, name, match):
    result = hostile[name]
    assert result["error"] is not None and result["error"].startswith("ValueError"), result
    assert re.search(match, result["error"]), result["error"]
    assert result["seconds"] < 5, result
    assert result["grew_mib"] < 64, result


def test_zip_member_larger_than_the_manifest_records_is_refused(fitted, tmp_path):
    path = tmp_path / "model.zip"
    fitted.save(path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "x.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b" " * 10 if info.filename == "config.json" else data)
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


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.update({"criterion.weight": torch.ones(5)}),
     r"criterion.weight has shape \(5,\)"),
    (lambda t: t.update({"optimizer.0.exp_avg": torch.zeros(())}),
     r"optimizer.0.exp_avg has shape \(\)"),
    (lambda t: t.update({"optimizer.0.step": torch.zeros(3)}),
     r"optimizer.0.step has shape \(3,\)"),
    (lambda t: t.update({"optimizer.0.exp_avg_sq": t["optimizer.0.exp_avg_sq"].double()}),
     r"optimizer.0.exp_avg_sq has .*dtype torch.float64"),
    (lambda t: t["optimizer.1.exp_avg"].view(-1)[0:1].fill_(float("nan")),
     r"optimizer.1.exp_avg holds values that are not finite"),
    (lambda t: next(v for k, v in t.items() if k.startswith("module."))
     .view(-1)[0:1].fill_(float("inf")), r"module\..* not finite"),
    (lambda t: t.update({"generator.state": torch.zeros(3, dtype=torch.uint8)}),
     r"generator.state has shape \(3,\)"),
])
def test_tensors_of_the_wrong_shape_dtype_or_value_are_refused(people, tmp_path, edit,
                                                                match):
    left, right, y = people
    clf = tiny(max_epochs=1, warm_start=True, class_weight="balanced").fit(left, right, y)
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
        fitted, people, tmp_path, archive):
    left, right, y = people
    path = tmp_path / ("model.zip" if archive else "model")
    fitted.save(path)
    other = tiny(max_epochs=1, random_state=3, similarity_prior=False).fit(left, right, y)
    before = sorted(p.name for p in tmp_path.iterdir())
    # Larger than the small JSON files, smaller than model.json and the weights:
    # the write fails part-way through the save.
    with _file_size_limit(4096), pytest.raises(OSError):
        other.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if not archive:
        assert sorted(p.name for p in path.iterdir()) == sorted(
            ["config.json", "history.json", "manifest.json", "model.json",
             "prior.skops", "weights.safetensors"])
    np.testing.assert_array_equal(RecordPairClassifier.load(path).predict_proba(left, right),
                                  fitted.predict_proba(left, right))


def test_zip_save_does_not_follow_a_planted_temporary_symlink(fitted, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "model.zip.tmp").symlink_to(victim)
    fitted.save(tmp_path / "model.zip")
    assert victim.read_text() == "precious"
    RecordPairClassifier.load(tmp_path / "model.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip", "model.zip.tmp",
                                                         "victim.txt"]


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
def test_two_saves_to_one_path_at_once_both_succeed(fitted, people, tmp_path,
                                                    monkeypatch, archive):
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
    np.testing.assert_array_equal(RecordPairClassifier.load(path).predict_proba(left, right),
                                  fitted.predict_proba(left, right))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


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
    y = np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[ns]")[np.arange(60) % 2]
    clf = tiny(max_epochs=1, early_stopping=False).fit(left, right, y)
    with pytest.raises(ValueError, match=r"class labels .*datetime64"):
        clf.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
