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
    The fitted state, one entry per component (format 2): ``estimator``
    (classes with their dtype, feature names, other fitted attributes such
    as the threshold), ``featurizer`` (fields, vocabularies, TF-IDF weights,
    the text encoder's identity) and ``network`` (its constructor arguments
    and the non-tensor part of the optimizer state). Format 1 held the same
    entries side by side at the top level; the estimator reads it still.
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

Every read is bounded: only regular files are read (no links, FIFOs or
devices), each only after its size (on disk, or as recorded in the zip
archive's directory, whose members must be stored or deflated) matches the
manifest and fits its limit: fixed limits for the JSON files and the prior
(whose own zip members are checked too), and for the weights a fixed limit
(``MAX_WEIGHTS_BYTES`` or the caller's), tightened by the network that
``model.json`` describes. Every JSON document is parsed only if it holds few
enough values (counted before parsing), so parsing cannot multiply the bytes
read. The weights' header is checked against the network, built on the meta
device, before any tensor is loaded or any module is built.

The manifest detects corruption and accidental edits; it is not a signature.
Whoever can write the files can also rewrite the manifest, but the worst a
crafted file can then do is fail to load or give wrong predictions: it cannot
run code, which an untrusted pickle can, nor make ``load`` read or allocate
beyond these limits.

Saving is atomic: the files are written under a new unique name beside the
target and renamed (a directory: exchanged, where the system can) into
place, so a failed save leaves the previous model loadable and no temporary
file behind, and a reader finds one whole model: it keeps a directory's
files open once checked, and starts over if the directory was replaced
before.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "skrecordpair.RecordPairClassifier"
# 2: model.json nests each component's state under its own key; 1: side by side.
FORMAT_VERSION = 2

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
_PRIOR_TYPES = frozenset(
    {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}
)

# Upper bounds on what load_files reads and parses, so that a crafted file
# cannot make it allocate without limit. Each JSON file has a byte limit and a
# limit on its JSON values (counted, before parsing, as the characters
# ``[ { , :``, which bounds the values from above): a parsed value costs up to
# about 100 bytes (an empty list or object in a list), whatever its text, so the
# value count bounds the parsed objects where the byte count does not. The
# limits are far above what a model needs: model.json holds the vocabularies
# and TF-IDF weights (a few MB and a few 100,000 values for 50,000 words); a
# history of 20 epochs is a few KB. The weights' limit is fixed
# (MAX_WEIGHTS_BYTES, or the caller's max_weights_bytes), never read from the
# files; the network that model.json describes tightens it (see weights_limit).
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_FILE_BYTES = 1 << 40  # a sanity bound on any size a manifest records
_FILE_LIMITS = {
    CONFIG: 1 << 20,
    MODEL: 64 << 20,
    HISTORY: 16 << 20,
    PRIOR: 64 << 20,  # the file, and the sum of its members uncompressed
}
# The most JSON values (see _json_values) each JSON document may hold.
_VALUE_LIMITS = {
    MANIFEST: 10_000,
    CONFIG: 100_000,
    MODEL: 2_000_000,
    HISTORY: 1_000_000,
    "prior.skops schema.json": 500_000,
    "the weights' header": 100_000,
}
# The skops schema of a prior (its other members are NumPy arrays).
_PRIOR_SCHEMA = "schema.json"
_PRIOR_SCHEMA_BYTES = 16 << 20
# The safetensors header of the weights (names, dtypes, shapes and offsets).
_MAX_WEIGHTS_HEADER_BYTES = 16 << 20
#: The largest weights file that ``load`` reads unless told otherwise
#: (``max_weights_bytes``): 1 GiB, four times a network of 256 MiB.
MAX_WEIGHTS_BYTES = 1 << 30
_LIMIT_REASONS = {
    CONFIG: "a model's config.json",
    MODEL: "a model's model.json",
    HISTORY: "a model's history.json",
    PRIOR: "a similarity prior",
    WEIGHTS: "the weights of the network that model.json describes",
}
_WEIGHT_COPIES = 4
_WEIGHTS_SLACK = 1 << 20
# The zip compression methods that save() writes (and zip tools use by
# default). Python's zip reader decompresses these within the bytes asked
# for; its bzip2 and LZMA readers decompress a whole chunk of input at once,
# however large its output, so a small member could allocate gigabytes.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
# Reads of a directory that another save replaced meanwhile are retried.
_LOAD_ATTEMPTS = 5

_CLASS_DTYPE_KINDS = "biufUO"
_JSON_SCALARS = (str, bool, int, float, type(None))

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_WEIGHTS_BYTES", "load_files", "save_files"]


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
        return {
            "__tuple__": [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        }
    if isinstance(value, dict):
        return {
            "__dict__": [
                [encode_value(k, f"{where} key"), encode_value(v, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]
        }
    if (
        isinstance(value, type)
        and issubclass(value, torch.optim.Optimizer)
        and getattr(torch.optim, value.__name__, None) is value
    ):
        return {"__optimizer__": value.__name__}
    raise Unsupported(f"{where} = {value!r} is not plain data")


def decode_value(value, where):
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, list):
        return [decode_value(v, where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, content),) = value.items()
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
            if isinstance(optimizer, type) and issubclass(
                optimizer, torch.optim.Optimizer
            ):
                return optimizer
            raise invalid(
                f"{where} names {content!r}, which is not a torch.optim optimizer"
            )
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
    """``classes_`` as JSON data: their NumPy dtype and their values."""
    classes = np.asarray(classes)
    message = (
        f"Cannot save the model as plain data: the class labels have dtype "
        f"{classes.dtype}; save() writes labels that are strings, numbers or "
        "booleans. Fit with such labels, or save the model with pickle/joblib."
    )
    if classes.dtype.kind not in _CLASS_DTYPE_KINDS:
        raise ValueError(message)
    try:
        values = [encode_value(v, "classes_") for v in classes.tolist()]
    except Unsupported:
        raise ValueError(message) from None
    if not all(isinstance(v, _JSON_SCALARS) for v in values):
        raise ValueError(message)
    return {
        "dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
        "values": values,
    }


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
        raise invalid(
            f"the classes {short(values)} do not fit the dtype {dtype}"
        ) from None
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
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        },
    }
    files[MANIFEST] = dump_json(manifest)
    if path.suffix.lower() == ".zip":
        _save_zip(files, path)
    else:
        _save_directory(files, path)


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
                    archive.writestr(
                        name,
                        data,
                        compress_type=(
                            zipfile.ZIP_STORED
                            if name == WEIGHTS
                            else zipfile.ZIP_DEFLATED
                        ),
                    )
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
    tmp = Path(
        tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    )
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
    if not names:
        return
    foreign = [
        n
        for n in names
        if n not in _SAVED_NAMES or not stat.S_ISREG(os.lstat(path / n).st_mode)
    ]
    if MANIFEST not in names:
        foreign = names
    why = "" if MANIFEST in names else f" and no {MANIFEST}"
    if not foreign and not _is_saved_manifest(path / MANIFEST):
        foreign, why = [MANIFEST], f", which is not the manifest of a {FORMAT}"
    if foreign:
        raise ValueError(
            f"{path} is not a saved model: it holds {short(foreign, 300)}{why}. save() "
            "replaces the whole directory; save to a new or empty directory, or remove "
            "these files first."
        )


def _is_saved_manifest(path):
    """Whether `path` is a regular file holding a saved model's manifest."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        data = f.read(_MAX_MANIFEST_BYTES + 1)
    try:
        manifest = parse_json(data, MANIFEST)
    except ValueError:
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _write_new_file(path, data):
    with open(path, "xb") as f:  # a fresh name in a directory of our own
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_in(new, path):
    """Rename the directory `new` to `path`, replacing the saved model there.

    Where the system can (Linux: ``renameat2`` with ``RENAME_EXCHANGE``), the
    two directories are exchanged in one step, so `path` always holds a
    complete model, the previous one or the new one; the previous one is then
    removed. Elsewhere the previous model is renamed aside first and removed
    only once `new` is in place; if `new` cannot be put in place, the
    previous model is put back. Another save to the same path at the same
    time may replace `path` in between: then the last one to finish wins.
    Readers (``load_files``) that find the directory replaced under them read
    the new one.
    """
    for _ in range(_SWAP_ATTEMPTS):
        if os.path.lexists(path):
            try:
                exchanged = _exchange(new, path)
            except FileNotFoundError:  # another save moved it aside meanwhile
                exchanged = False
            if exchanged:  # `new` now holds the previous model
                shutil.rmtree(new, ignore_errors=True)
                return
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
    raise OSError(
        f"Cannot move the saved model into {path}: other saves to the same "
        "path kept replacing it."
    )


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a, b):
    """Exchange the directories `a` and `b` atomically; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if (
        renameat2(
            _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
        )
        == 0
    ):
        return True
    err = ctypes.get_errno()
    if err in (
        errno.ENOSYS,
        errno.EINVAL,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EPERM,
    ):
        return False  # the kernel or the file system cannot exchange
    raise OSError(err, os.strerror(err), os.fspath(b))


@functools.lru_cache(maxsize=1)
def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2  # glibc 2.28 and later
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


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


def dump_json(data, indent=1):
    # ensure_ascii keeps any string (lone surrogates included) representable.
    return json.dumps(data, ensure_ascii=True, indent=indent).encode("ascii")


# ------------------------------------------------------------------- reading


def load_files(path, rebuild, *, max_weights_bytes=None):
    """Read, check and parse the files of the model saved at `path`, and rebuild it.

    Parameters
    ----------
    path : str or path-like
        The directory or ``.zip`` archive written by :func:`save_files`.
    rebuild : callable
        ``rebuild(config, model, history, read_weights, prior,
        format_version=...)`` builds the model from the parsed files;
        ``read_weights(limit)`` returns the bytes of the weights file, refused
        beyond `limit` bytes (derived from the network, see
        :func:`weights_limit`); ``prior`` is None without a prior file;
        ``format_version`` is the manifest's (at most ``FORMAT_VERSION``), so
        that the model's layout of an earlier format can be read. A
        ValueError it raises names the versions that saved and load the
        model.
    max_weights_bytes : int or None, default=None
        The largest weights file to read; None means ``MAX_WEIGHTS_BYTES``.

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

    max_weights = _check_max_weights_bytes(max_weights_bytes)
    path = Path(os.fspath(path))
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            with _Reader(path) as reader:
                return _load(reader, rebuild, max_weights, __version__)
        except _Replaced:
            pass  # another save replaced the directory: read the new one
        except _Missing as exc:
            left = _interrupted_saves(path)
            if not left:
                raise FileNotFoundError(str(exc)) from None
            if attempt == _LOAD_ATTEMPTS - 1:
                # Where the system cannot exchange two directories in one
                # step, a save renames the previous model aside, then the new
                # one in; one killed in between leaves both beside the path.
                raise FileNotFoundError(
                    f"No saved model at {path}, but a save to it was interrupted "
                    f"or is in progress: {', '.join(p.name for p in left[:3])} beside "
                    "it hold(s) saved models ('.old': the previous one, '.tmp': the "
                    f"new one). Rename one of them to {path.name} to load it."
                ) from None
        time.sleep(0.02 * (attempt + 1))
    raise ValueError(
        f"Cannot read the model at {path}: other saves kept replacing it "
        "while it was read; try again."
    )


def _load(reader, rebuild, max_weights, version):
    """`load_files` on one directory or archive; _Replaced if another save
    replaced it meanwhile (all files come from one save)."""
    manifest = parse_json(reader.read_manifest(), MANIFEST)
    _check_manifest(manifest, version)
    saved_version = manifest["skrecordpair_version"]
    entries = manifest["files"]
    for name, entry in entries.items():  # every file is there, regular, of its size
        reader.check(name, entry["bytes"])
    if entries[WEIGHTS]["bytes"] > max_weights:
        raise ValueError(
            f"Invalid saved model: {WEIGHTS} is recorded as {entries[WEIGHTS]['bytes']} "
            f"bytes; load reads at most {max_weights} bytes of weights. If you trust "
            "this model, pass a larger load(..., max_weights_bytes=...)."
        )
    files = {
        name: reader.read(name, entries[name], _FILE_LIMITS[name])
        for name in (CONFIG, MODEL, HISTORY, PRIOR)
        if name in entries
    }
    where = f"(saved by skrecordpair {saved_version}, loaded by skrecordpair {version})"

    def read_weights(limit):
        return reader.read(WEIGHTS, entries[WEIGHTS], min(limit, max_weights))

    try:
        # Each file's bytes are dropped once parsed.
        config = parse_json(files.pop(CONFIG), CONFIG)
        model = parse_json(files.pop(MODEL), MODEL)
        history = parse_json(files.pop(HISTORY), HISTORY)
        prior = files.pop(PRIOR, None)
        return rebuild(
            config,
            model,
            history,
            read_weights,
            None if prior is None else _load_prior(prior),
            format_version=manifest["format_version"],
        )
    except RecursionError:
        raise ValueError(
            f"Invalid saved model: values nested too deeply {where}."
        ) from None
    except ValueError as exc:
        raise ValueError(f"{exc} {where}") from None


def _check_max_weights_bytes(value):
    if value is None:
        return MAX_WEIGHTS_BYTES
    if not (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value > 0
    ):
        raise ValueError(
            f"max_weights_bytes must be a positive integer (a number of "
            f"bytes) or None; got {short(value)}."
        )
    return int(value)


class _Replaced(Exception):
    """The directory being read was replaced by another save meanwhile."""


class _Missing(Exception):
    """Nothing at the path of the model."""


def _interrupted_saves(path):
    """Hidden directories that a save to `path` left beside it, newest first."""
    try:
        found = [
            p
            for p in path.parent.iterdir()
            if p.name.startswith(f".{path.name}.")
            and p.suffix in (".old", ".tmp")
            and p.is_dir()
            and not p.is_symlink()
        ]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


class _Reader:
    """Reads the files of a saved model from a directory or a zip archive.

    Every read is bounded: a file is read only if it is a regular file (not a
    link, a FIFO or a device) whose size, on disk or as recorded in the zip
    archive's directory, is the one the manifest records and within its limit.
    """

    def __init__(self, path):
        self.path = path
        self.archive = self.dir_fd = None
        self.fds = {}  # a directory's files, kept open once checked
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise _Missing(f"No saved model at {path}.") from None
        if stat.S_ISDIR(mode):
            self.dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        elif stat.S_ISREG(mode) and zipfile.is_zipfile(path):
            try:
                self.archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ValueError(
                    f"{path} is not a readable zip archive: {exc}."
                ) from None
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
        for fd in self.fds.values():
            os.close(fd)

    def read_manifest(self):
        with self._open(MANIFEST) as (f, size):
            if size > _MAX_MANIFEST_BYTES:
                raise _too_large(MANIFEST, size, _MAX_MANIFEST_BYTES, "a manifest")
            return f.read(_MAX_MANIFEST_BYTES)

    def check(self, name, size):
        """Refuse `name` unless it is a regular file of `size` bytes.

        In a directory, the file stays open until the reader closes: another
        save that replaces the directory and removes this one meanwhile does
        not take the file from a read that comes later.
        """
        with self._open(name, keep=True) as (_, actual):
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
    def _open(self, name, keep=False):
        """An open file and its size, recorded before anything is read; with
        `keep`, a directory's file stays open for later reads."""
        try:
            if self.archive is not None:
                info = self.archive.getinfo(name)
                _check_zip_method(info, name)
                with self.archive.open(info) as f:
                    yield f, info.file_size
            else:
                if name not in self.fds:
                    fd = self._open_regular(name)
                    if not keep:
                        with os.fdopen(fd, "rb") as f:
                            yield f, os.fstat(f.fileno()).st_size
                        return
                    self.fds[name] = fd
                # A duplicate shares the offset: start each use at the beginning.
                with os.fdopen(os.dup(self.fds[name]), "rb") as f:
                    f.seek(0)
                    yield f, os.fstat(f.fileno()).st_size
        except (FileNotFoundError, KeyError):
            if self._replaced():
                raise _Replaced() from None
            raise ValueError(
                f"Invalid saved model: {name} is missing from {self.path}."
            ) from None
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
            raise ValueError(
                f"Invalid saved model: cannot read {name}: {exc}."
            ) from None

    def _replaced(self):
        """Whether the directory being read is no longer the one at the path."""
        if self.dir_fd is None:
            return False
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        then = os.fstat(self.dir_fd)
        return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)

    def _open_regular(self, name):
        # O_NOFOLLOW refuses a link; O_NONBLOCK keeps a FIFO from blocking the open.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ValueError(
                    f"Invalid saved model: {name} is a symbolic link; a "
                    "saved model holds regular files only."
                ) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"Invalid saved model: {name} is not a regular file.")
        return fd


def _check_zip_method(info, where):
    """Refuse a zip member compressed with a method whose reader is unbounded."""
    if info.compress_type not in _ZIP_METHODS:
        raise ValueError(
            f"Invalid saved model: {where} is compressed with zip method "
            f"{info.compress_type} (e.g. bzip2 or LZMA); a saved model's archive "
            f"holds {' or '.join(_ZIP_METHODS.values())} members only (zip it again "
            "with the default method, or load the directory)."
        )


def _check_size(name, actual, expected):
    if actual != expected:
        raise ValueError(
            f"Invalid saved model: {name} has {actual} bytes where the manifest records "
            f"{expected}: the file is truncated or was modified."
        )


def _too_large(name, size, limit, what):
    return ValueError(
        f"Invalid saved model: {name} is recorded as {size} bytes; "
        f"{what} takes at most {limit} bytes."
    )


def parse_json(data, name, max_values=None):
    """The JSON document `data` (bytes) of the file `name`, bounded in memory.

    Before parsing, its values are counted from above (see `_json_values`)
    and refused beyond `max_values` (by default the limit of `name`), so a
    file of small values (``[],[],...``: 3 bytes each, about 70 bytes once
    parsed) cannot make parsing allocate many times its size.
    """
    if max_values is None:
        max_values = _VALUE_LIMITS[name]
    values = _json_values(data)
    if values > max_values:
        raise invalid(
            f"{name} holds up to {values} JSON values; {short(name)} takes at "
            f"most {max_values}"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(
            f"Invalid saved model: {name} is not valid JSON ({exc})."
        ) from None


def _json_values(data):
    """An upper bound on the number of values in the JSON text `data`.

    Every value but the first follows a ``[``, a ``,`` or a ``:``, so these
    characters (also when inside strings, which only counts too many) plus
    one bound the values; each ``{`` counted too bounds the objects' keys.
    """
    return 1 + sum(data.count(c) for c in (b"[", b"{", b",", b":"))


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
    expect_keys(
        manifest,
        ("format", "format_version", "skrecordpair_version", "files"),
        MANIFEST,
        optional=("torch_version",),
    )
    files = manifest["files"]
    expect_keys(files, DATA_FILES, f"{MANIFEST} 'files'", optional=(PRIOR,))
    for name, entry in files.items():
        expect_keys(entry, ("bytes", "sha256"), f"{MANIFEST} entry {name!r}")
        size, digest = entry["bytes"], entry["sha256"]
        if not (
            isinstance(size, int)
            and not isinstance(size, bool)
            and 0 <= size <= _MAX_FILE_BYTES
        ):
            raise invalid(f"{MANIFEST} records an invalid size for {name}")
        if not (isinstance(digest, str) and len(digest) == 64):
            raise invalid(f"{MANIFEST} records an invalid checksum for {name}")


def parse_weights(data):
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

    _check_prior_members(data)
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
        if untrusted - _PRIOR_TYPES:
            raise invalid(
                f"{PRIOR} holds types that a similarity prior does not "
                f"use: {sorted(untrusted - _PRIOR_TYPES)[:5]}"
            )
        prior = skops.io.loads(data, trusted=sorted(untrusted))
    except ValueError:
        raise
    except Exception as exc:  # whatever skops raises on a malformed file
        raise invalid(f"{PRIOR} cannot be read: {exc}") from None
    if not isinstance(prior, HistGradientBoostingClassifier):
        raise invalid(f"{PRIOR} does not hold a HistGradientBoostingClassifier")
    return prior


def _check_prior_members(data):
    """Refuse a prior whose members (skops files are zip archives) are too large.

    Python's zipfile never decompresses more than a member's recorded size
    (for the stored and deflated members it accepts), so checking the
    recorded sizes bounds what skops can read; skops parses the schema
    (``schema.json``) as JSON, whose values are counted first.
    """
    limit = _FILE_LIMITS[PRIOR]
    where = f"{PRIOR} schema.json"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            total = 0
            for info in members:
                _check_zip_method(info, f"{PRIOR} member {short(info.filename)}")
                total += info.file_size
                if total > limit:
                    raise invalid(
                        f"{PRIOR} holds a member {short(info.filename)} of "
                        f"{info.file_size} bytes uncompressed, {total} bytes "
                        "with the ones before it; a similarity prior takes at "
                        f"most {limit} bytes"
                    )
            try:
                info = archive.getinfo(_PRIOR_SCHEMA)
            except KeyError:
                raise invalid(f"{PRIOR} has no {_PRIOR_SCHEMA}") from None
            if info.file_size > _PRIOR_SCHEMA_BYTES:
                raise invalid(
                    f"{where} is {info.file_size} bytes uncompressed; the schema "
                    f"of a similarity prior takes at most {_PRIOR_SCHEMA_BYTES}"
                )
            with archive.open(info) as f:
                schema = f.read(_PRIOR_SCHEMA_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise invalid(f"{PRIOR} is not a skops file: {exc}") from None
    values = _json_values(schema)
    if values > _VALUE_LIMITS[where]:
        raise invalid(
            f"{where} holds up to {values} JSON values; the schema of a "
            f"similarity prior takes at most {_VALUE_LIMITS[where]}"
        )


# ------------------------------------------------------------------- tensors


# safetensors' dtype names, for the header check that comes before any tensor is
# loaded (the names a module's state can use).
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def safetensors_header(data):
    """The safetensors header (name -> dtype and shape), parsed without the tensors."""

    def refuse(why):
        return ValueError(
            f"Invalid saved model: {WEIGHTS} is not a valid safetensors file ({why})."
        )

    if len(data) < 8:
        raise refuse("shorter than its header")
    length = int.from_bytes(data[:8], "little")
    if length > len(data) - 8:
        raise refuse(f"its header claims {length} bytes")
    if length > _MAX_WEIGHTS_HEADER_BYTES:
        raise refuse(
            f"its header has {length} bytes; a network's takes at most "
            f"{_MAX_WEIGHTS_HEADER_BYTES}"
        )
    text = data[8 : 8 + length]
    where = "the weights' header"
    if _json_values(text) > _VALUE_LIMITS[where]:
        raise refuse(
            f"its header holds up to {_json_values(text)} JSON values; a "
            f"network's takes at most {_VALUE_LIMITS[where]}"
        )
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refuse("its header is not JSON") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
        ):
            raise refuse(f"invalid header entry {short(name)}")
    return header


def check_tensor(name, tensor, shape, dtype):
    """`tensor` has this shape and dtype (None: any floating dtype) and is finite."""
    right_dtype = tensor.is_floating_point() if dtype is None else tensor.dtype == dtype
    if tuple(tensor.shape) != tuple(shape) or not right_dtype:
        raise invalid(
            f"{name} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; the model "
            f"expects shape {tuple(shape)} and "
            f"{'a floating-point dtype' if dtype is None else f'dtype {dtype}'}"
        )
    check_finite(name, tensor)


def check_finite(name, tensor):
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise invalid(f"{name} holds values that are not finite")


def weights_limit(tensors):
    """The most bytes the weights file of a network with these parameters and
    buffers (`tensors`, possibly on the meta device) can take.

    This only tightens the fixed limit (``MAX_WEIGHTS_BYTES`` or the caller's
    ``max_weights_bytes``) that ``load_files`` applies before reading: the
    network is described by the file, so its size is the file's choice.
    """
    return (
        _WEIGHT_COPIES * sum(t.numel() * t.element_size() for t in tensors)
        + _WEIGHTS_SLACK
    )
