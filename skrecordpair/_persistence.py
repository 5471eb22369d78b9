"""Safe persistence of a fitted ``RecordPairClassifier``: plain data, no pickle.

A saved model is a directory (or, when the path ends with ``.zip``, a zip
archive of the same files):

``manifest.json``
    The format name and version, the skrecordpair version that wrote it, and
    the size and SHA-256 of every other file. It is read first; any file whose
    size or checksum differs is refused before it is parsed.
``config.json``
    The estimator's hyperparameters (``get_params()``).
``model.json``
    The fitted state: classes (with their dtype), fields, vocabularies, the
    featurisation settings, the network's constructor arguments, and the
    non-tensor part of the optimizer state.
``weights.safetensors``
    The tensors: network weights (``module.*``), the class weights of the loss
    (``criterion.weight``), the optimizer's moment estimates (``optimizer.*``)
    and the state of the training shuffler (``generator.state``), so that
    ``warm_start`` training continues exactly where it stopped.
``history.json``
    skorch's training history (``net_.history_``).

Loading parses JSON and safetensors only: nothing is unpickled, imported or
executed from the files. Every inconsistency (a truncated or edited file, an
unknown key, a tensor of the wrong shape or dtype, a format written by a newer
skrecordpair) raises a ``ValueError`` that says what is wrong.

Every read is bounded: only regular files are read (no links, FIFOs or
devices), each only after its size (on disk, or as recorded in the zip
archive's directory) matches the manifest and fits its limit: fixed limits
for the JSON files and the prior (whose own zip members are checked too), and
for the weights a limit derived from the network that ``model.json``
describes. The weights' header is checked against that network, built on the
meta device, before any tensor is loaded or any module is built.

The manifest detects corruption and accidental edits; it is not a signature.
Whoever can write the files can also rewrite the manifest, but the worst a
crafted file can then do is fail to load or give wrong predictions: it cannot
run code, which an untrusted pickle can, nor make ``load`` read or allocate
beyond these limits.

Saving is atomic: the files are written under a new unique name beside the
target and renamed into place, so a failed save leaves the previous model
loadable and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import io
import json
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "skrecordpair.RecordPairClassifier"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
CONFIG = "config.json"
MODEL = "model.json"
WEIGHTS = "weights.safetensors"
HISTORY = "history.json"
DATA_FILES = (CONFIG, MODEL, WEIGHTS, HISTORY)
# The similarity prior (a HistGradientBoostingClassifier), in skops' format,
# present only when the model has one.
PRIOR = "prior.skops"
# The only type in a prior file beyond those skops trusts by default.
_PRIOR_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})

# Upper bounds on what load_model reads, so that a crafted file cannot make it
# allocate without limit. The JSON files and the prior get fixed limits, far
# above what a model needs (model.json holds the vocabularies and TF-IDF
# weights: a few MB for 50,000 words). The weights' limit comes from the
# network that model.json describes: _WEIGHT_COPIES times its parameters (the
# weights and up to three optimizer moments each) plus _WEIGHTS_SLACK for the
# header, the class weights, the shuffler's state and scalar optimizer state.
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_FILE_BYTES = 1 << 40  # a sanity bound on any size a manifest records
_FILE_LIMITS = {
    CONFIG: 1 << 20,
    MODEL: 256 << 20,
    HISTORY: 64 << 20,
    PRIOR: 64 << 20,  # the file, and the sum of its members uncompressed
}
_LIMIT_REASONS = {
    CONFIG: "a model's config.json", MODEL: "a model's model.json",
    HISTORY: "a model's history.json", PRIOR: "a similarity prior",
    WEIGHTS: "the weights of the network that model.json describes",
}
_WEIGHT_COPIES = 4
_WEIGHTS_SLACK = 1 << 20

_CLASS_DTYPE_KINDS = "biufUO"
_JSON_SCALARS = (str, bool, int, float, type(None))


class _Unsupported(TypeError):
    """A value that the plain-data encoding cannot represent."""


# ------------------------------------------------------------ value encoding


def _encode(value, where):
    """Encode a parameter value as JSON data; tuples and dicts are tagged.

    Lists stay JSON arrays; tuples become ``{"__tuple__": [...]}`` and dicts
    ``{"__dict__": [[key, value], ...]}`` so that their types and key types
    survive; numpy scalars become Python scalars; a torch optimizer class
    becomes ``{"__optimizer__": name}`` (resolved in ``torch.optim`` only).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, f"{where} key"), _encode(v, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
    if (isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
            and getattr(torch.optim, value.__name__, None) is value):
        return {"__optimizer__": value.__name__}
    raise _Unsupported(f"{where} = {value!r} is not plain data")


def _decode(value, where):
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, content), = value.items()
        if tag == "__tuple__" and isinstance(content, list):
            return tuple(_decode(v, where) for v in content)
        if tag == "__dict__" and isinstance(content, list):
            out = {}
            for item in content:
                if not (isinstance(item, list) and len(item) == 2):
                    break
                key = _decode(item[0], where)
                try:
                    out[key] = _decode(item[1], where)
                except TypeError:  # an unhashable key
                    break
            else:
                return out
        if tag == "__optimizer__" and isinstance(content, str):
            optimizer = getattr(torch.optim, content, None)
            if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
                return optimizer
            raise _invalid(f"{where} names {content!r}, which is not a torch.optim optimizer")
    raise _invalid(f"{where} holds an unexpected value {_short(value)}")


def _short(value, n=80):
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _invalid(message):
    return ValueError(f"Invalid saved model: {message}.")


# ------------------------------------------------------------------------ save


def save_model(clf, path):
    """Write a fitted :class:`~skrecordpair.RecordPairClassifier` as plain data.

    Parameters
    ----------
    clf : RecordPairClassifier
        A fitted classifier.
    path : str or path-like
        A directory (created if needed; an earlier saved model there is
        replaced as a whole), or a file name ending with ``.zip`` to write one
        zip archive of the same files. Either is written under a unique
        temporary name beside `path` and renamed into place, so a failed save
        leaves the previous model as it was.

    Raises
    ------
    ValueError
        If a hyperparameter or the class labels (e.g. of dtype datetime64)
        cannot be written as plain data, e.g. a custom optimizer class
        outside ``torch.optim`` (save such models with pickle or joblib); or
        if `path` is a directory that holds files other than a saved model's.
        ``callbacks`` and a ``random_state`` that is a ``RandomState``
        instance only matter for training: they are recorded as None, with a
        warning.
    OSError
        If writing fails (e.g. the disk is full); the previous model at
        `path`, if any, is left intact.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from skrecordpair import RecordPairClassifier
    >>> X = pd.DataFrame({"left_name": ["anna", "bob", "carl", "dora"] * 5,
    ...                   "right_name": ["anna", "rob", "karl", "nora"] * 5})
    >>> clf = RecordPairClassifier(word_dim=4, char_dim=4, char_hidden_size=4,
    ...                            field_hidden_size=4, record_hidden_size=2,
    ...                            num_perspectives=1, aggregator_hidden_size=2,
    ...                            max_epochs=1, early_stopping=False,
    ...                            random_state=0).fit(X, [1, 0] * 10)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = clf.save(tmp + "/model")
    ...     loaded = RecordPairClassifier.load(tmp + "/model")
    >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    path = Path(os.fspath(path))
    files = _model_files(clf)
    if path.suffix.lower() == ".zip":
        _save_zip(files, path)
    else:
        _save_directory(files, path)


def _model_files(clf):
    """The bytes of every file of the saved model, the manifest last."""
    from . import __version__

    config = {"params": _encode_params(clf)}
    tensors, model = _fitted_state(clf)
    history = _history(clf)

    import safetensors.torch

    files = {
        CONFIG: _dump_json(config),
        MODEL: _dump_json(model),
        WEIGHTS: safetensors.torch.save(tensors, metadata={"format": "pt"}),
        HISTORY: _dump_json(history, indent=None),
    }
    if clf.prior_ is not None:
        import skops.io

        files[PRIOR] = skops.io.dumps(clf.prior_)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skrecordpair_version": __version__,
        "torch_version": torch.__version__,
        "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in files.items()},
    }
    files[MANIFEST] = _dump_json(manifest)
    return files


def _save_zip(files, path):
    """Write the archive under a unique temporary name, then rename it over `path`."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory; cannot write a zip archive there.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates a new file (O_EXCL): it never follows a planted link.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                for name, data in files.items():
                    archive.writestr(name, data, compress_type=(
                        zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_directory(files, path):
    """Write a complete new directory beside `path`, then swap it in.

    The previous model stays intact until the new one is complete; on any
    failure the temporary directory is removed and `path` is left as it was.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    _check_target_directory(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            _write_new_file(tmp / name, data)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_SAVED_NAMES = frozenset({MANIFEST, *DATA_FILES, PRIOR})


def _check_target_directory(path):
    """Refuse to replace anything but a saved model (or an empty directory)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        raise ValueError(
            f"{path} exists and is not a directory; save() writes a directory "
            "(or a zip archive when the name ends with '.zip')."
        )
    names = sorted(os.listdir(path))
    foreign = [n for n in names if n not in _SAVED_NAMES]
    if names and MANIFEST not in names:
        foreign = names
    if foreign:
        raise ValueError(
            f"{path} is not a saved model: it holds {_short(foreign, 300)}"
            f"{'' if MANIFEST in names else f' and no {MANIFEST}'}. save() replaces "
            "the whole directory; save to a new or empty directory, or remove these "
            "files first."
        )


def _write_new_file(path, data):
    with open(path, "xb") as f:  # a fresh name in a directory of our own
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_in(new, path):
    """Rename the directory `new` to `path`, replacing the saved model there.

    The previous model is renamed aside first and removed only once `new` is
    in place; if `new` cannot be put in place, the previous model is put back.
    Another save to the same path at the same time may replace `path` between
    these renames: then the last one to finish wins.
    """
    for _ in range(_SWAP_ATTEMPTS):
        old = _move_aside(path) if os.path.lexists(path) else None
        try:
            os.rename(new, path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another save's model
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
                continue
            if old is not None:
                os.rename(old, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"Cannot move the saved model into {path}: other saves to the same "
                  "path kept replacing it.")


_SWAP_ATTEMPTS = 10


def _move_aside(path):
    """Rename `path` to a new unique name beside it; None if it vanished meanwhile."""
    old = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
    try:
        os.rename(path, old)  # replaces the empty directory just made
    except FileNotFoundError:
        os.rmdir(old)
        return None
    return old


def _umask():
    """The process's file mode creation mask (to give new files the usual modes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _dump_json(data, indent=1):
    # ensure_ascii keeps any string (lone surrogates included) representable.
    return json.dumps(data, ensure_ascii=True, indent=indent).encode("ascii")


def _encode_params(clf):
    params = clf.get_params(deep=False)
    out = {}
    for name, value in params.items():
        if name == "callbacks" and value is not None:
            warnings.warn(
                "The callbacks are not saved (they are arbitrary Python objects); "
                "the loaded model has callbacks=None. Set them again with "
                "set_params(callbacks=...) before continuing training, or save the "
                "model with pickle/joblib.", UserWarning, stacklevel=4)
            value = None
        elif name == "random_state" and isinstance(value, np.random.RandomState):
            warnings.warn(
                "random_state is a RandomState instance, which is not saved; the "
                "loaded model has random_state=None (it only affects training).",
                UserWarning, stacklevel=4)
            value = None
        try:
            out[name] = _encode(value, name)
        except _Unsupported as exc:
            raise ValueError(
                f"Cannot save the model as plain data: the parameter {exc}. Use a "
                "value made of strings, numbers, booleans, lists, tuples and dicts "
                "(for optimizer: 'adam', 'adamw', 'sgd' or a class of torch.optim), "
                "or save the model with pickle/joblib."
            ) from None
    return out


def _fitted_state(clf):
    """The tensors to write and the JSON description of the fitted state."""
    from ._similarity import tfidf_state

    net = clf.net_
    encoder = clf._encoder
    tensors = {}
    module_state, shared = _dedup_shared(net.module_.state_dict())
    tensors.update({f"module.{k}": v for k, v in module_state.items()})
    weight = getattr(net.criterion_, "weight", None)
    if weight is not None:
        tensors["criterion.weight"] = weight.detach()
    generator = net.get_params().get("iterator_train__generator")
    if isinstance(generator, torch.Generator):
        tensors["generator.state"] = generator.get_state()
    optimizer = _optimizer_state(net, tensors)

    classes = _class_labels(clf.classes_)
    words = _ordered(clf.vocabulary_.words, "word")
    chars = _ordered(clf.vocabulary_.chars, "character")
    network = {k[len("module__"):]: v for k, v in net.get_params().items()
               if k.startswith("module__")}
    names = getattr(clf, "feature_names_in_", None)
    model = {
        "classes": classes,
        "fields": [list(f) for f in clf.fields_],
        "n_features_in": int(clf.n_features_in_),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "encoder": {
            "max_tokens_per_field": int(encoder.max_tokens_per_field),
            "max_chars_per_token": int(encoder.max_chars_per_token),
            "prepend_field_names": bool(encoder.prepend_field_names),
        },
        "vocabulary": {"words": words, "chars": chars},
        "network": {k: _encode(v, f"module__{k}") for k, v in network.items()},
        "shared_weights": shared,
        "optimizer": optimizer,
        "attributes": _extra_attributes(clf),
    }
    if clf._tfidf is not None:
        model["tfidf"] = tfidf_state(clf._tfidf)
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, model


def _class_labels(classes):
    """``classes_`` as JSON data: their NumPy dtype and their values."""
    classes = np.asarray(classes)
    message = (f"Cannot save the model as plain data: the class labels have dtype "
               f"{classes.dtype}; save() writes labels that are strings, numbers or "
               "booleans. Fit with such labels, or save the model with pickle/joblib.")
    if classes.dtype.kind not in _CLASS_DTYPE_KINDS:
        raise ValueError(message)
    try:
        values = [_encode(v, "classes_") for v in classes.tolist()]
    except _Unsupported:
        raise ValueError(message) from None
    if not all(isinstance(v, _JSON_SCALARS) for v in values):
        raise ValueError(message)
    return {"dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
            "values": values}


# Fitted attributes rebuilt from their own entries; any other public fitted
# attribute (e.g. ``threshold_``) is saved generically if it is plain data.
_REBUILT = frozenset({"classes_", "fields_", "vocabulary_", "net_", "prior_",
                      "n_features_in_",
                      "feature_names_in_"})
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*_")


def _extra_attributes(clf):
    out = {}
    for name, value in vars(clf).items():
        if name in _REBUILT or not _ATTRIBUTE_NAME.fullmatch(name):
            continue
        try:
            out[name] = _encode(value, name)
        except _Unsupported as exc:
            raise ValueError(f"Cannot save the model as plain data: the fitted "
                             f"attribute {exc}.") from None
    return out


def _ordered(mapping, what):
    """A vocabulary dict (token -> id, ids 0..n-1) as the list of its tokens."""
    tokens = sorted(mapping, key=mapping.__getitem__)
    if [mapping[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError(f"The {what} vocabulary's ids are not 0..n-1; cannot save it.")
    return tokens


def _dedup_shared(state):
    """Drop the keys that alias an earlier tensor (safetensors refuses them).

    ``BiMpmMatching`` with shared weights registers one Parameter under two
    names; the alias is restored from its canonical name on load (and the
    rebuilt network shares the Parameter again by construction).
    """
    seen, out, shared = {}, {}, {}
    for key, tensor in state.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(),
                 tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if tensor.numel() and ident in seen:
            shared[key] = seen[ident]
            continue
        seen.setdefault(ident, key)
        out[key] = tensor
    # Any remaining partial overlap gets its own copy.
    return {k: v.clone() for k, v in out.items()}, shared


def _optimizer_state(net, tensors):
    optimizer = getattr(net, "optimizer_", None)
    if optimizer is None:
        return None
    state = optimizer.state_dict()
    try:
        groups = _encode(state["param_groups"], "optimizer param_groups")
        scalars = {}
        for index, entry in state["state"].items():
            scalars[str(index)] = {}
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value.detach()
                    scalars[str(index)][key] = {"__tensor__": f"optimizer.{index}.{key}"}
                else:
                    scalars[str(index)][key] = _encode(value, f"optimizer state {key}")
    except _Unsupported as exc:
        warnings.warn(
            f"The optimizer state is not saved ({exc}); training with warm_start "
            "after loading restarts the optimizer's running averages.",
            UserWarning, stacklevel=5)
        for key in [k for k in tensors if k.startswith("optimizer.")]:
            del tensors[key]
        return None
    return {"param_groups": groups, "state": scalars}


def _history(clf):
    history = list(getattr(clf.net_, "history_", None) or [])

    def scalar(value):
        if isinstance(value, np.generic) or (isinstance(value, torch.Tensor)
                                             and value.numel() == 1):
            return value.item()
        raise TypeError(type(value).__name__)

    try:
        return json.loads(json.dumps(history, default=scalar))
    except (TypeError, ValueError):
        warnings.warn("The training history holds values that are not plain data "
                      "(written by a callback?); it is not saved.", UserWarning,
                      stacklevel=4)
        return []


# ------------------------------------------------------------------------ load


def load_model(path, *, cls=None, device=None):
    """Read a model written by :func:`save_model`, without unpickling anything.

    Parameters
    ----------
    path : str or path-like
        The directory or ``.zip`` archive written by ``save``.
    cls : type, default=None
        The estimator class to build (``RecordPairClassifier`` or a subclass);
        None means ``RecordPairClassifier``.
    device : str or torch.device, default=None
        Where to put the network. None uses the saved ``device``, or the CPU
        (with a warning) if the model was saved on CUDA and none is available.

    Returns
    -------
    RecordPairClassifier
        The fitted model, predicting exactly as the saved one did.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the files are not a saved model, are truncated, corrupted or edited,
        lack a file or a key, hold unknown keys, are not regular files, exceed
        their size limits, hold tensors that do not fit the network, or were
        written in a newer format than this version of skrecordpair reads.
    """
    from . import __version__
    from ._classifier import RecordPairClassifier

    cls = RecordPairClassifier if cls is None else cls
    path = Path(os.fspath(path))
    with _Reader(path) as reader:
        manifest = _parse_json(reader.read_manifest(), MANIFEST)
        _check_manifest(manifest, __version__)
        saved_version = manifest["skrecordpair_version"]
        entries = manifest["files"]
        for name, entry in entries.items():  # every file is there, regular, of its size
            reader.check(name, entry["bytes"])
        files = {name: reader.read(name, entries[name], _FILE_LIMITS[name])
                 for name in (CONFIG, MODEL, HISTORY, PRIOR) if name in entries}
        where = (f"(saved by skrecordpair {saved_version}, loaded by skrecordpair "
                 f"{__version__})")

        def read_weights(limit):
            return reader.read(WEIGHTS, entries[WEIGHTS], limit)

        try:
            config = _parse_json(files[CONFIG], CONFIG)
            model = _parse_json(files[MODEL], MODEL)
            history = _parse_json(files[HISTORY], HISTORY)
            return _rebuild(cls, config, model, history, read_weights, device,
                            files.get(PRIOR))
        except RecursionError:
            raise ValueError(f"Invalid saved model: values nested too deeply {where}.") \
                from None
        except ValueError as exc:
            raise ValueError(f"{exc} {where}") from None


class _Reader:
    """Reads the files of a saved model from a directory or a zip archive.

    Every read is bounded: a file is read only if it is a regular file (not a
    link, a FIFO or a device) whose size, on disk or as recorded in the zip
    archive's directory, is the one the manifest records and within its limit.
    """

    def __init__(self, path):
        self.path = path
        self.archive = self.dir_fd = None
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"No saved model at {path}.") from None
        if stat.S_ISDIR(mode):
            self.dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        elif stat.S_ISREG(mode) and zipfile.is_zipfile(path):
            try:
                self.archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ValueError(f"{path} is not a readable zip archive: {exc}.") from None
        else:
            raise ValueError(
                f"{path} is neither a directory written by save() nor a zip "
                "archive of one. (Models dumped with pickle or joblib load with "
                "pickle.load / joblib.load, from trusted sources only.)"
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.archive is not None:
            self.archive.close()
        if self.dir_fd is not None:
            os.close(self.dir_fd)

    def read_manifest(self):
        with self._open(MANIFEST) as (f, size):
            if size > _MAX_MANIFEST_BYTES:
                raise _too_large(MANIFEST, size, _MAX_MANIFEST_BYTES, "a manifest")
            return f.read(_MAX_MANIFEST_BYTES)

    def check(self, name, size):
        """Refuse `name` unless it is a regular file of `size` bytes."""
        with self._open(name) as (_, actual):
            _check_size(name, actual, size)

    def read(self, name, entry, limit):
        """The bytes of `name`, checked against its manifest `entry`."""
        size = entry["bytes"]
        if size > limit:
            raise _too_large(name, size, limit, _LIMIT_REASONS.get(name, "its format"))
        with self._open(name) as (f, actual):
            _check_size(name, actual, size)
            data = f.read(size + 1)
        _check_size(name, len(data), size)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(
                f"Invalid saved model: the SHA-256 checksum of {name} does not match "
                "the manifest: the file is corrupted or was modified."
            )
        return data

    @contextlib.contextmanager
    def _open(self, name):
        """An open file and its size, recorded before anything is read."""
        try:
            if self.archive is not None:
                info = self.archive.getinfo(name)
                with self.archive.open(info) as f:
                    yield f, info.file_size
            else:
                with os.fdopen(self._open_regular(name), "rb") as f:
                    yield f, os.fstat(f.fileno()).st_size
        except (FileNotFoundError, KeyError):
            raise ValueError(
                f"Invalid saved model: {name} is missing from {self.path}."
            ) from None
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
            raise ValueError(f"Invalid saved model: cannot read {name}: {exc}.") from None

    def _open_regular(self, name):
        # O_NOFOLLOW refuses a link; O_NONBLOCK keeps a FIFO from blocking the open.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ValueError(f"Invalid saved model: {name} is a symbolic link; a "
                                 "saved model holds regular files only.") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"Invalid saved model: {name} is not a regular file.")
        return fd


def _check_size(name, actual, expected):
    if actual != expected:
        raise ValueError(
            f"Invalid saved model: {name} has {actual} bytes where the manifest records "
            f"{expected}: the file is truncated or was modified."
        )


def _too_large(name, size, limit, what):
    return ValueError(f"Invalid saved model: {name} is recorded as {size} bytes; "
                      f"{what} takes at most {limit} bytes.")


def _parse_json(data, name):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"Invalid saved model: {name} is not valid JSON ({exc}).") from None


def _expect_keys(obj, keys, where, optional=()):
    if not isinstance(obj, dict):
        raise _invalid(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = sorted(set(keys) - set(obj))
    unknown = sorted(set(obj) - set(keys) - set(optional))
    if missing:
        raise _invalid(f"{where} lacks the key(s) {missing}")
    if unknown:
        raise _invalid(f"{where} has unknown key(s) {unknown}")


def _check_manifest(manifest, version):
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT):
        raise ValueError(
            f"Invalid saved model: {MANIFEST} does not describe a {FORMAT} "
            "(wrong 'format')."
        )
    fmt = manifest.get("format_version")
    saved = manifest.get("skrecordpair_version")
    if not isinstance(saved, str):
        raise _invalid(f"{MANIFEST} lacks the skrecordpair version")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise _invalid(f"{MANIFEST} has an invalid format_version {_short(fmt)}")
    if fmt > FORMAT_VERSION:
        raise ValueError(
            f"This model was saved by skrecordpair {saved} in format version {fmt}; "
            f"skrecordpair {version} reads format versions up to {FORMAT_VERSION}. "
            f"Upgrade skrecordpair (to {saved} or later) to load it."
        )
    _expect_keys(manifest, ("format", "format_version", "skrecordpair_version",
                            "files"), MANIFEST, optional=("torch_version",))
    files = manifest["files"]
    _expect_keys(files, DATA_FILES, f"{MANIFEST} 'files'", optional=(PRIOR,))
    for name, entry in files.items():
        _expect_keys(entry, ("bytes", "sha256"), f"{MANIFEST} entry {name!r}")
        size, digest = entry["bytes"], entry["sha256"]
        if not (isinstance(size, int) and not isinstance(size, bool)
                and 0 <= size <= _MAX_FILE_BYTES):
            raise _invalid(f"{MANIFEST} records an invalid size for {name}")
        if not (isinstance(digest, str) and len(digest) == 64):
            raise _invalid(f"{MANIFEST} records an invalid checksum for {name}")


def _parse_weights(data):
    import safetensors.torch

    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # SafetensorError has no public base class
        raise ValueError(
            f"Invalid saved model: {WEIGHTS} is not a valid safetensors file ({exc})."
        ) from None


def _rebuild(cls, config, model, history, read_weights, device, prior):
    from ._bimpm import RecordPairNetwork
    from ._classifier import RecordPairClassifier
    from ._similarity import field_plan
    from ._text import PAD, RESERVED_WORDS, UNK, PairEncoder, Vocabulary

    if not (isinstance(cls, type) and issubclass(cls, RecordPairClassifier)):
        raise TypeError(f"cls must be RecordPairClassifier or a subclass; got {cls!r}.")

    # --- hyperparameters
    _expect_keys(config, ("params",), CONFIG)
    saved = config["params"]
    if not isinstance(saved, dict):
        raise _invalid(f"{CONFIG} 'params' must be a JSON object")
    known = cls().get_params(deep=False)
    unknown = sorted(set(saved) - set(known))
    if unknown:
        raise ValueError(
            f"The saved model sets the parameter(s) {unknown}, which this version of "
            f"{cls.__name__} does not have; load it with the skrecordpair version "
            "that saved it."
        )
    params = {name: _decode(value, f"parameter {name!r}") for name, value in saved.items()}
    clf = cls(**params)
    try:
        clf._check_params()
    except (ValueError, TypeError) as exc:
        raise _invalid(f"a saved parameter is invalid: {exc}") from None
    for name in ("left_prefix", "right_prefix"):
        if not isinstance(getattr(clf, name), str):
            raise _invalid(f"{name} must be a string")
    if device is not None:
        clf.device = device
    elif str(clf.device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"The model was saved with device={clf.device!r}, but CUDA is not "
                      "available; it is loaded on the CPU.", UserWarning, stacklevel=4)
        clf.device = "cpu"

    # --- fitted attributes
    _expect_keys(model, ("classes", "fields", "n_features_in", "feature_names_in",
                         "encoder", "vocabulary", "network", "shared_weights",
                         "optimizer", "attributes"), MODEL, optional=("tfidf",))
    clf.classes_ = _classes(model["classes"])
    clf.fields_ = _fields(model["fields"])
    n_features = model["n_features_in"]
    if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
        raise _invalid(f"n_features_in must be a positive integer, got {_short(n_features)}")
    clf.n_features_in_ = n_features
    names = model["feature_names_in"]
    if names is not None:
        if not (isinstance(names, list) and len(names) == n_features
                and all(isinstance(n, str) for n in names)):
            raise _invalid("feature_names_in must be n_features_in strings")
        clf.feature_names_in_ = np.array(names, dtype=object)
        columns = set(names)
        absent = [c for f in clf.fields_ for c in f[1:] if c is not None and c not in columns]
        if absent:
            raise _invalid(f"the fields use columns {absent} that are not among the "
                           "feature names")

    vocab = model["vocabulary"]
    _expect_keys(vocab, ("words", "chars"), f"{MODEL} 'vocabulary'")
    words = _token_list(vocab["words"], "words", RESERVED_WORDS)
    chars = _token_list(vocab["chars"], "chars", (PAD, UNK))
    clf.vocabulary_ = Vocabulary(words={w: i for i, w in enumerate(words)},
                                 chars={c: i for i, c in enumerate(chars)})
    enc = model["encoder"]
    _expect_keys(enc, ("max_tokens_per_field", "max_chars_per_token",
                       "prepend_field_names"), f"{MODEL} 'encoder'")
    for key in ("max_tokens_per_field", "max_chars_per_token"):
        if not (isinstance(enc[key], int) and not isinstance(enc[key], bool) and enc[key] >= 1):
            raise _invalid(f"encoder {key} must be a positive integer")
    if not isinstance(enc["prepend_field_names"], bool):
        raise _invalid("encoder prepend_field_names must be a boolean")
    encoder = PairEncoder(clf.fields_, **enc)
    encoder.vocabulary = clf.vocabulary_
    clf._encoder = encoder

    attributes = model["attributes"]
    if not isinstance(attributes, dict):
        raise _invalid(f"{MODEL} 'attributes' must be a JSON object")
    for name, value in attributes.items():
        if (name in _REBUILT or not _ATTRIBUTE_NAME.fullmatch(name)
                or hasattr(cls, name)):
            raise _invalid(f"{MODEL} 'attributes' names an invalid attribute "
                           f"{_short(name)}")
        setattr(clf, name, _decode(value, f"attribute {name!r}"))
    try:
        clf._check_loaded_pos_label()
    except ValueError as exc:
        raise _invalid(str(exc).rstrip(".")) from None

    # --- the network
    network = model["network"]
    if not isinstance(network, dict):
        raise _invalid(f"{MODEL} 'network' must be a JSON object")
    allowed = set(inspect.signature(RecordPairNetwork).parameters)
    unknown = sorted(set(network) - allowed)
    if unknown:
        raise _invalid(f"the network has unknown argument(s) {unknown}")
    network = {k: _decode(v, f"network argument {k!r}") for k, v in network.items()}
    expected_sizes = {"n_words": len(words), "n_chars": len(chars),
                      "n_classes": len(clf.classes_)}
    for key, size in expected_sizes.items():
        if network.get(key) != size:
            raise _invalid(f"the network's {key}={_short(network.get(key))} does not match "
                           f"the saved vocabularies and classes ({size})")
    numeric = getattr(clf, "numeric_fields_", None)
    if not (isinstance(numeric, list) and all(isinstance(n, str) for n in numeric)):
        raise _invalid("the attribute numeric_fields_ must be a list of field names")
    clf._similarity_plan = clf._tfidf = None
    if network.get("n_similarity_features") or prior is not None:
        clf._similarity_plan = field_plan(clf.fields_, numeric)
        clf._tfidf = _tfidf(model.get("tfidf"), clf._similarity_plan)
    n_similarity = (0 if clf._similarity_plan is None
                    else sum(len(f[-1]) for f in clf._similarity_plan))
    if network.get("n_similarity_features"):
        if network["n_similarity_features"] != n_similarity:
            raise _invalid(
                f"the network's n_similarity_features="
                f"{_short(network['n_similarity_features'])} does not match the "
                f"{n_similarity} similarity features of the saved fields")
    clf._similarity_in_head = bool(network.get("n_similarity_features"))
    clf.prior_ = None if prior is None else _load_prior(prior, clf)
    n_classes = len(clf.classes_)
    # Every tensor's shape is checked against the network before any is built.
    blueprint = _blueprint(network)
    tensors = _read_tensors(read_weights, blueprint, model["shared_weights"])
    module_state = _module_state(tensors, model["shared_weights"])
    class_weight = _class_weight(tensors.pop("criterion.weight", None), n_classes)
    optimizer_state = _saved_optimizer_state(model["optimizer"], tensors,
                                             list(blueprint.parameters()))
    generator_state = tensors.pop("generator.state", None)
    if tensors:
        raise _invalid(f"{WEIGHTS} holds unknown tensors {sorted(tensors)[:5]}")
    # Dummy labels: the class weights of the loss are restored from the file.
    net = clf._build_net(np.arange(n_classes), seed=_seed(clf))
    net.set_params(**{f"module__{k}": v for k, v in network.items()},
                   criterion__weight=class_weight)
    _restore_generator(net, generator_state)
    try:
        net.initialize()
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise _invalid(f"cannot build the network from the saved arguments: {exc}") from None
    net.module_.load_state_dict(module_state)
    _load_optimizer(net, optimizer_state)
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise _invalid(f"{HISTORY} must be a list of epochs")
    from skorch.history import History

    net.history_ = History(history)
    clf.net_ = net
    return clf


def _tfidf(state, plan):
    """The similarity features' TF-IDF weights, for exactly the two-sided fields."""
    from ._similarity import tfidf_from_state

    expected = sorted(name for name, left, right, _ in plan
                      if left is not None and right is not None)
    if not isinstance(state, dict) or sorted(state) != expected:
        raise _invalid(f"{MODEL} 'tfidf' must hold the TF-IDF weights of the fields "
                       f"{expected}")
    try:
        return tfidf_from_state(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise _invalid(f"{MODEL} 'tfidf' is malformed: {exc}") from None


def _load_prior(data, clf):
    """The similarity prior from skops bytes, trusting nothing beyond its trees."""
    import skops.io
    from sklearn.ensemble import HistGradientBoostingClassifier

    _check_prior_members(data)
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
        if untrusted - _PRIOR_TYPES:
            raise _invalid(f"{PRIOR} holds types that a similarity prior does not "
                           f"use: {sorted(untrusted - _PRIOR_TYPES)[:5]}")
        prior = skops.io.loads(data, trusted=sorted(untrusted))
    except ValueError:
        raise
    except Exception as exc:  # whatever skops raises on a malformed file
        raise _invalid(f"{PRIOR} cannot be read: {exc}") from None
    n_features = sum(len(f[-1]) for f in clf._similarity_plan)
    if not (isinstance(prior, HistGradientBoostingClassifier)
            and getattr(prior, "n_features_in_", None) == n_features
            and np.array_equal(getattr(prior, "classes_", None),
                               np.arange(len(clf.classes_)))):
        raise _invalid(f"{PRIOR} is not a similarity prior for {n_features} features "
                       f"and {len(clf.classes_)} classes")
    return prior


def _check_prior_members(data):
    """Refuse a prior whose members (skops files are zip archives) are too large.

    Python's zipfile never decompresses more than a member's recorded size, so
    checking the recorded sizes bounds what skops can read.
    """
    limit = _FILE_LIMITS[PRIOR]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _invalid(f"{PRIOR} is not a skops file: {exc}") from None
    total = 0
    for info in members:
        total += info.file_size
        if total > limit:
            raise _invalid(f"{PRIOR} holds a member {_short(info.filename)} of "
                           f"{info.file_size} bytes uncompressed, {total} bytes with the "
                           f"ones before it; a similarity prior takes at most {limit} "
                           "bytes")


def _seed(clf):
    from sklearn.utils import check_random_state

    return check_random_state(clf.random_state).randint(np.iinfo(np.int32).max)


def _classes(saved):
    _expect_keys(saved, ("dtype", "values"), f"{MODEL} 'classes'")
    dtype, values = saved["dtype"], saved["values"]
    if not isinstance(dtype, str) or not isinstance(values, list):
        raise _invalid("classes must hold a dtype string and a list of values")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise _invalid(f"classes have an unknown dtype {_short(dtype)}") from None
    if dtype.kind not in _CLASS_DTYPE_KINDS:
        raise _invalid(f"classes have an unsupported dtype {dtype}")
    if not all(isinstance(v, _JSON_SCALARS) for v in values):
        raise _invalid("classes must be strings, numbers or booleans")
    if len(values) < 2:
        raise _invalid("there must be at least two classes")
    try:
        classes = np.empty(len(values), dtype=dtype)
        classes[:] = values
    except (TypeError, ValueError, OverflowError):
        raise _invalid(f"the classes {_short(values)} do not fit the dtype {dtype}") from None
    if classes.tolist() != values or len(set(values)) != len(values):
        raise _invalid(f"the classes {_short(values)} are not distinct values of {dtype}")
    return classes


def _fields(saved):
    if not (isinstance(saved, list) and saved):
        raise _invalid("fields must be a non-empty list")
    fields = []
    for field in saved:
        if not (isinstance(field, list) and len(field) == 3 and isinstance(field[0], str)
                and all(c is None or isinstance(c, str) for c in field[1:])
                and field[1:] != [None, None]):
            raise _invalid(f"invalid field {_short(field)}")
        fields.append(tuple(field))
    return fields


def _token_list(tokens, what, reserved):
    if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
        raise _invalid(f"the {what} vocabulary must be a list of strings")
    if tuple(tokens[: len(reserved)]) != tuple(reserved):
        raise _invalid(f"the {what} vocabulary must start with {list(reserved)}")
    if len(set(tokens)) != len(tokens):
        raise _invalid(f"the {what} vocabulary repeats entries")
    return tokens


# ------------------------------------------------------------------- tensors


# safetensors' dtype names, for the header check that comes before any tensor is
# loaded (the names a module's state can use).
_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
# Optimizer state that is one number per parameter (Adam's step count, ASGD's
# eta and mu, NAdam's mu_product); any other optimizer tensor is per element.
_SCALAR_OPTIMIZER_STATE = frozenset({"step", "mu_product", "eta", "mu"})


def _blueprint(network):
    """The network that the saved arguments describe, on the meta device.

    A meta module has the shapes and dtypes of its tensors but no storage, so
    arguments that describe a huge network cost nothing before the weights are
    checked against it.
    """
    from ._bimpm import RecordPairNetwork

    try:
        with torch.device("meta"):
            return RecordPairNetwork(**network)
    except Exception as exc:  # whatever the constructor raises on bad arguments
        raise _invalid(f"cannot build the network from the saved arguments: {exc}") from None


def _weights_limit(blueprint):
    """The most bytes the weights file of this network can take."""
    tensors = [*blueprint.parameters(), *blueprint.buffers()]
    return _WEIGHT_COPIES * sum(t.numel() * t.element_size() for t in tensors) \
        + _WEIGHTS_SLACK


def _read_tensors(read_weights, blueprint, shared):
    """The saved tensors, read once their header fits the network."""
    data = read_weights(_weights_limit(blueprint))
    _check_module_header(_safetensors_header(data), blueprint, shared)
    return _parse_weights(data)


def _safetensors_header(data):
    """The safetensors header (name -> dtype and shape), parsed without the tensors."""
    def refuse(why):
        return ValueError(f"Invalid saved model: {WEIGHTS} is not a valid safetensors "
                          f"file ({why}).")

    if len(data) < 8:
        raise refuse("shorter than its header")
    length = int.from_bytes(data[:8], "little")
    if length > len(data) - 8:
        raise refuse(f"its header claims {length} bytes")
    try:
        header = json.loads(data[8:8 + length])
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refuse("its header is not JSON") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list)
                and all(isinstance(n, int) and n >= 0 for n in entry["shape"])):
            raise refuse(f"invalid header entry {_short(name)}")
    return header


def _check_shared(shared):
    if not (isinstance(shared, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in shared.items())):
        raise _invalid("shared_weights must map names to names")


def _check_module_header(header, blueprint, shared):
    """The module's tensors in the header have exactly the network's names and shapes."""
    _check_shared(shared)
    saved = {k[len("module."):]: v for k, v in header.items() if k.startswith("module.")}
    for alias, canonical in shared.items():
        if alias in saved or canonical not in saved:
            raise _invalid(f"the shared weight {alias!r} -> {canonical!r} is inconsistent")
        saved[alias] = saved[canonical]
    expected = blueprint.state_dict()
    missing = sorted(set(expected) - set(saved))
    unknown = sorted(set(saved) - set(expected))
    if missing or unknown:
        raise _invalid(f"the weights do not fit the network: missing {missing[:5]}, "
                       f"unexpected {unknown[:5]}")
    for key, target in expected.items():  # in the network's order: inputs first
        entry = saved[key]
        shape = tuple(entry["shape"])
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"])
        if shape != tuple(target.shape) or dtype != target.dtype:
            raise _invalid(
                f"the weight {key!r} has shape {shape} and dtype {dtype}; the network "
                f"expects {tuple(target.shape)} and {target.dtype}"
            )


def _check_tensor(name, tensor, shape, dtype):
    """`tensor` has this shape and dtype (None: any floating dtype) and is finite."""
    if dtype is None:
        right_dtype = tensor.is_floating_point()
    else:
        right_dtype = tensor.dtype == dtype
    if tuple(tensor.shape) != tuple(shape) or not right_dtype:
        raise _invalid(
            f"{name} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; the model "
            f"expects shape {tuple(shape)} and "
            f"{'a floating-point dtype' if dtype is None else f'dtype {dtype}'}")
    _check_finite(name, tensor)


def _check_finite(name, tensor):
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise _invalid(f"{name} holds values that are not finite")


def _module_state(tensors, shared):
    """The network's state dict (shared weights restored), taken out of `tensors`."""
    state = {k[len("module."):]: tensors.pop(k) for k in list(tensors)
             if k.startswith("module.")}
    for key, tensor in state.items():
        _check_finite(f"module.{key}", tensor)
    for alias, canonical in shared.items():
        state[alias] = state[canonical]
    return state


def _class_weight(weight, n_classes):
    """The loss's class weights: one finite, non-negative float per class."""
    if weight is None:
        return None
    _check_tensor("criterion.weight", weight, (n_classes,), torch.float32)
    if bool((weight < 0).any()):
        raise _invalid("criterion.weight holds negative class weights")
    return weight


def _restore_generator(net, state):
    generator = net.get_params().get("iterator_train__generator")
    if state is None or not isinstance(generator, torch.Generator):
        return
    expected = generator.get_state()
    _check_tensor("generator.state", state, expected.shape, expected.dtype)
    try:
        generator.set_state(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _invalid(f"generator.state is not a generator state: {exc}") from None


def _saved_optimizer_state(saved, tensors, params):
    """The optimizer's state dict, each tensor checked against its parameter."""
    optimizer_tensors = {k: tensors.pop(k) for k in list(tensors)
                         if k.startswith("optimizer.")}
    if saved is None:
        if optimizer_tensors:
            raise _invalid("optimizer tensors without an optimizer state")
        return None
    _expect_keys(saved, ("param_groups", "state"), f"{MODEL} 'optimizer'")
    groups = _decode(saved["param_groups"], "optimizer param_groups")
    if not (isinstance(groups, list) and all(isinstance(g, dict) for g in groups)):
        raise _invalid("optimizer param_groups must be a list of objects")
    if not isinstance(saved["state"], dict):
        raise _invalid("optimizer state must be a JSON object")
    state = {}
    for index, entry in saved["state"].items():
        if not (index.isdigit() and isinstance(entry, dict)):
            raise _invalid("invalid optimizer state")
        if int(index) >= len(params):
            raise _invalid("the optimizer state names a parameter the network lacks")
        param = params[int(index)]
        state[int(index)] = {}
        for key, value in entry.items():
            if isinstance(value, dict) and set(value) == {"__tensor__"}:
                name = value["__tensor__"]
                if not isinstance(name, str) or name not in optimizer_tensors:
                    raise _invalid(f"the optimizer tensor {_short(name)} is missing")
                tensor = optimizer_tensors.pop(name)
                if key in _SCALAR_OPTIMIZER_STATE:
                    _check_tensor(name, tensor, (), None)
                else:
                    _check_tensor(name, tensor, param.shape, param.dtype)
                state[int(index)][key] = tensor
            else:
                state[int(index)][key] = _decode(value, f"optimizer state {key!r}")
    if optimizer_tensors:
        raise _invalid(f"unknown optimizer tensors {sorted(optimizer_tensors)[:5]}")
    return {"state": state, "param_groups": groups}


def _load_optimizer(net, state):
    if state is None:
        return
    try:
        net.optimizer_.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise _invalid(f"the optimizer state does not fit the optimizer: {exc}") from None


__all__ = ["save_model", "load_model", "FORMAT", "FORMAT_VERSION"]
