"""The saved-model format: files, manifest, checked readers; plain data, no pickle.

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
``prior.skops``
    The similarity prior (a ``HistGradientBoostingClassifier``) in skops'
    format, present only when the model has one.

This module is the format only: it writes and reads those files, checks the
manifest, bounds what it reads, and offers the checked readers (plain-data
encoding of values, key checks) with which each component rebuilds itself.
What goes into ``model.json`` and the weights comes from the components
themselves (their ``to_state``/``from_state``, next to their code), composed by
the estimator's ``save`` and ``load``; nothing here imports an estimator.

Loading parses JSON and safetensors only: nothing is unpickled, imported or
executed from the files. Every inconsistency (a truncated or edited file, an
unknown key, a tensor of the wrong shape or dtype, a format written by a newer
skrecordpair) raises a ``ValueError`` that says what is wrong.

The manifest detects corruption and accidental edits; it is not a signature.
Whoever can write the files can also rewrite the manifest, but the worst a
crafted file can then do is fail to load or give wrong predictions: it cannot
run code, which an untrusted pickle can.
"""

from __future__ import annotations

import hashlib
import json
import os
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

# Upper bounds on what load_files reads, so that a crafted manifest cannot make
# it allocate without limit (a model's JSON is at most a few tens of MB: the
# vocabulary; its weights a few hundred MB even for huge vocabularies).
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_FILE_BYTES = 1 << 34

_CLASS_DTYPE_KINDS = "biufUO"
_JSON_SCALARS = (str, bool, int, float, type(None))

__all__ = ["FORMAT", "FORMAT_VERSION", "load_files", "save_files"]


class Unsupported(TypeError):
    """A value that the plain-data encoding cannot represent."""


# ------------------------------------------------------------ value encoding


def encode_value(value, where):
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
        return [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"__dict__": [[encode_value(k, f"{where} key"), encode_value(v, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
    if (isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
            and getattr(torch.optim, value.__name__, None) is value):
        return {"__optimizer__": value.__name__}
    raise Unsupported(f"{where} = {value!r} is not plain data")


def decode_value(value, where):
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, list):
        return [decode_value(v, where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, content), = value.items()
        if tag == "__tuple__" and isinstance(content, list):
            return tuple(decode_value(v, where) for v in content)
        if tag == "__dict__" and isinstance(content, list):
            out = {}
            for item in content:
                if not (isinstance(item, list) and len(item) == 2):
                    break
                key = decode_value(item[0], where)
                try:
                    out[key] = decode_value(item[1], where)
                except TypeError:  # an unhashable key
                    break
            else:
                return out
        if tag == "__optimizer__" and isinstance(content, str):
            optimizer = getattr(torch.optim, content, None)
            if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
                return optimizer
            raise invalid(f"{where} names {content!r}, which is not a torch.optim optimizer")
    raise invalid(f"{where} holds an unexpected value {short(value)}")


def short(value, n=80):
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def invalid(message):
    return ValueError(f"Invalid saved model: {message}.")


def expect_keys(obj, keys, where, optional=()):
    if not isinstance(obj, dict):
        raise invalid(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = sorted(set(keys) - set(obj))
    unknown = sorted(set(obj) - set(keys) - set(optional))
    if missing:
        raise invalid(f"{where} lacks the key(s) {missing}")
    if unknown:
        raise invalid(f"{where} has unknown key(s) {unknown}")


def encode_classes(classes):
    """The class labels as plain data, with their dtype."""
    classes = np.asarray(classes)
    return {"dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
            "values": [encode_value(v, "classes_") for v in classes.tolist()]}


def decode_classes(saved):
    """The class labels written by `encode_classes`."""
    expect_keys(saved, ("dtype", "values"), f"{MODEL} 'classes'")
    dtype, values = saved["dtype"], saved["values"]
    if not isinstance(dtype, str) or not isinstance(values, list):
        raise invalid("classes must hold a dtype string and a list of values")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise invalid(f"classes have an unknown dtype {short(dtype)}") from None
    if dtype.kind not in _CLASS_DTYPE_KINDS:
        raise invalid(f"classes have an unsupported dtype {dtype}")
    if not all(isinstance(v, _JSON_SCALARS) for v in values):
        raise invalid("classes must be strings, numbers or booleans")
    if len(values) < 2:
        raise invalid("there must be at least two classes")
    try:
        classes = np.empty(len(values), dtype=dtype)
        classes[:] = values
    except (TypeError, ValueError, OverflowError):
        raise invalid(f"the classes {short(values)} do not fit the dtype {dtype}") from None
    if classes.tolist() != values or len(set(values)) != len(values):
        raise invalid(f"the classes {short(values)} are not distinct values of {dtype}")
    return classes


# ------------------------------------------------------------------- writing


def save_files(path, *, config, model, tensors, history, prior=None):
    """Write a model's files and their manifest to `path`.

    Parameters
    ----------
    path : str or path-like
        A directory (created if needed; the files of an earlier save in it are
        replaced, other files are left alone), or a file name ending with
        ``.zip`` to write one zip archive of the same files.
    config, model, history : JSON data
        The contents of ``config.json``, ``model.json`` and ``history.json``.
    tensors : dict of str to torch.Tensor
        The contents of ``weights.safetensors``.
    prior : HistGradientBoostingClassifier or None, default=None
        The similarity prior, written to ``prior.skops``.
    """
    import safetensors.torch

    from . import __version__

    path = Path(os.fspath(path))
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    files = {
        CONFIG: dump_json(config),
        MODEL: dump_json(model),
        WEIGHTS: safetensors.torch.save(tensors, metadata={"format": "pt"}),
        HISTORY: dump_json(history, indent=None),
    }
    if prior is not None:
        import skops.io

        files[PRIOR] = skops.io.dumps(prior)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skrecordpair_version": __version__,
        "torch_version": torch.__version__,
        "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in files.items()},
    }
    files[MANIFEST] = dump_json(manifest)  # last in the dict, so written last

    if path.suffix.lower() == ".zip":
        if path.is_dir():
            raise ValueError(f"{path} is a directory; cannot write a zip archive there.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data, compress_type=(
                    zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED))
        os.replace(tmp, path)
        return
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{path} exists and is not a directory; save() writes a directory "
            "(or a zip archive when the name ends with '.zip')."
        )
    path.mkdir(parents=True, exist_ok=True)
    # The manifest goes last: an interrupted save leaves files that do not match it.
    if PRIOR not in files:
        (path / PRIOR).unlink(missing_ok=True)  # left by an earlier save
    for name in files:  # the manifest last
        tmp = path / (name + ".tmp")
        tmp.write_bytes(files[name])
        os.replace(tmp, path / name)


def dump_json(data, indent=1):
    # ensure_ascii keeps any string (lone surrogates included) representable.
    return json.dumps(data, ensure_ascii=True, indent=indent).encode("ascii")


# ------------------------------------------------------------------- reading


def load_files(path, rebuild):
    """Read, check and parse the files of the model saved at `path`, and rebuild it.

    Parameters
    ----------
    path : str or path-like
        The directory or ``.zip`` archive written by :func:`save_files`.
    rebuild : callable
        ``rebuild(config, model, history, tensors, prior)`` builds the model
        from the parsed files (``prior`` is None without a prior file); a
        ValueError it raises names the versions that saved and load the model.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the files are not a saved model, are truncated, corrupted or edited,
        lack a file or a key, hold unknown keys, or were written in a newer
        format than this version of skrecordpair reads.
    """
    from . import __version__

    path = Path(os.fspath(path))
    reader = _Reader(path)
    try:
        manifest = parse_json(reader.read(MANIFEST, _MAX_MANIFEST_BYTES), MANIFEST)
        _check_manifest(manifest, __version__)
        saved_version = manifest["skrecordpair_version"]
        files = {name: reader.read_verified(name, manifest["files"][name])
                 for name in (*DATA_FILES, PRIOR) if name in manifest["files"]}
    finally:
        reader.close()
    where = (f"(saved by skrecordpair {saved_version}, loaded by skrecordpair "
             f"{__version__})")
    try:
        config = parse_json(files[CONFIG], CONFIG)
        model = parse_json(files[MODEL], MODEL)
        history = parse_json(files[HISTORY], HISTORY)
        tensors = _parse_weights(files[WEIGHTS])
        prior = files.get(PRIOR)
        return rebuild(config, model, history, tensors,
                       None if prior is None else _load_prior(prior))
    except RecursionError:
        raise ValueError(f"Invalid saved model: values nested too deeply {where}.") from None
    except ValueError as exc:
        raise ValueError(f"{exc} {where}") from None


class _Reader:
    """Reads the files of a saved model from a directory or a zip archive."""

    def __init__(self, path):
        self.path = path
        self.archive = None
        if not path.exists():
            raise FileNotFoundError(f"No saved model at {path}.")
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise ValueError(
                    f"{path} is neither a directory written by save() nor a zip "
                    "archive of one. (Models dumped with pickle or joblib load with "
                    "pickle.load / joblib.load, from trusted sources only.)"
                )
            try:
                self.archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ValueError(f"{path} is not a readable zip archive: {exc}.") from None

    def close(self):
        if self.archive is not None:
            self.archive.close()

    def read(self, name, limit):
        """The bytes of `name`, at most ``limit + 1`` of them."""
        try:
            if self.archive is not None:
                with self.archive.open(name) as f:
                    return f.read(limit + 1)
            with open(self.path / name, "rb") as f:
                return f.read(limit + 1)
        except (FileNotFoundError, KeyError):
            raise ValueError(
                f"Invalid saved model: {name} is missing from {self.path}."
            ) from None
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
            raise ValueError(f"Invalid saved model: cannot read {name}: {exc}.") from None

    def read_verified(self, name, expected):
        data = self.read(name, expected["bytes"])
        if len(data) != expected["bytes"]:
            raise ValueError(
                f"Invalid saved model: {name} has {len(data)}"
                f"{'+' if len(data) > expected['bytes'] else ''} bytes where the "
                f"manifest records {expected['bytes']}: the file is truncated or "
                "was modified."
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected["sha256"]:
            raise ValueError(
                f"Invalid saved model: the SHA-256 checksum of {name} does not match "
                "the manifest: the file is corrupted or was modified."
            )
        return data


def parse_json(data, name):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"Invalid saved model: {name} is not valid JSON ({exc}).") from None


def _check_manifest(manifest, version):
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT):
        raise ValueError(
            f"Invalid saved model: {MANIFEST} does not describe a {FORMAT} "
            "(wrong 'format')."
        )
    fmt = manifest.get("format_version")
    saved = manifest.get("skrecordpair_version")
    if not isinstance(saved, str):
        raise invalid(f"{MANIFEST} lacks the skrecordpair version")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise invalid(f"{MANIFEST} has an invalid format_version {short(fmt)}")
    if fmt > FORMAT_VERSION:
        raise ValueError(
            f"This model was saved by skrecordpair {saved} in format version {fmt}; "
            f"skrecordpair {version} reads format versions up to {FORMAT_VERSION}. "
            f"Upgrade skrecordpair (to {saved} or later) to load it."
        )
    expect_keys(manifest, ("format", "format_version", "skrecordpair_version",
                            "files"), MANIFEST, optional=("torch_version",))
    files = manifest["files"]
    expect_keys(files, DATA_FILES, f"{MANIFEST} 'files'", optional=(PRIOR,))
    for name, entry in files.items():
        expect_keys(entry, ("bytes", "sha256"), f"{MANIFEST} entry {name!r}")
        size, digest = entry["bytes"], entry["sha256"]
        if not (isinstance(size, int) and not isinstance(size, bool)
                and 0 <= size <= _MAX_FILE_BYTES):
            raise invalid(f"{MANIFEST} records an invalid size for {name}")
        if not (isinstance(digest, str) and len(digest) == 64):
            raise invalid(f"{MANIFEST} records an invalid checksum for {name}")


def _parse_weights(data):
    import safetensors.torch

    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # SafetensorError has no public base class
        raise ValueError(
            f"Invalid saved model: {WEIGHTS} is not a valid safetensors file ({exc})."
        ) from None


def _load_prior(data):
    """The similarity prior from skops bytes, trusting nothing beyond its trees."""
    import skops.io
    from sklearn.ensemble import HistGradientBoostingClassifier


    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
        if untrusted - _PRIOR_TYPES:
            raise invalid(f"{PRIOR} holds types that a similarity prior does not "
                           f"use: {sorted(untrusted - _PRIOR_TYPES)[:5]}")
        prior = skops.io.loads(data, trusted=sorted(untrusted))
    except ValueError:
        raise
    except Exception as exc:  # whatever skops raises on a malformed file
        raise invalid(f"{PRIOR} cannot be read: {exc}") from None
    if not isinstance(prior, HistGradientBoostingClassifier):
        raise invalid(f"{PRIOR} does not hold a HistGradientBoostingClassifier")
    return prior
