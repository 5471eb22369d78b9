"""Contextual vectors of field values from a frozen pre-trained text encoder.

A Hugging Face encoder (BERT, MiniLM, ...) is loaded through ``transformers``,
an optional dependency (``pip install skrecordpair[transformers]``), and run
without gradients. Each distinct value is encoded once: values are
deduplicated, batched by length (little padding) under a bound on the tokens
per batch, and kept in a cache keyed by the encoded text.

This module imports nothing from pandas, and from scikit-learn only its
constraint objects, through the package's parameter validation.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import numbers
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .._validation import Condition, Interval, StrOptions, TorchDevice, validate_params

_INSTALL_HINT = (
    "FrozenTextEncoder needs the optional dependency 'transformers'; install it "
    "with `pip install skrecordpair[transformers]`."
)
POOLINGS = ("mean", "cls")

# True while a saved model is loaded without the caller naming its encoder:
# the encoder that the file names is then read from local files only.
_FROM_SAVED_NAME = contextvars.ContextVar(
    "skrecordpair_encoder_from_saved_name", default=False
)
# Keys of a tokenizer's serialisation that change with its use, not its identity.
_TOKENIZER_VOLATILE = ("truncation", "padding", "version")
# Tokenizer settings hashed for tokenizers without a serialisation (slow ones).
_TOKENIZER_SETTINGS = (
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
    "do_basic_tokenize",
    "never_split",
    "add_prefix_space",
    "lowercase",
    "trim_offsets",
    "clean_up_tokenization_spaces",
)


@contextlib.contextmanager
def encoders_from_local_files():
    """Within this context, new encoders load from local files only.

    ``RecordPairClassifier.load`` builds the encoder that a saved model names
    in it (unless the caller names the encoder): a file must not make ``load``
    contact the network. The encoders keep the setting.
    """
    token = _FROM_SAVED_NAME.set(True)
    try:
        yield
    finally:
        _FROM_SAVED_NAME.reset(token)


def display_name(model):
    """How errors name an encoder: a hub name as is, a local directory by its
    last component (the saving machine's full path is nobody's business)."""
    text = os.fspath(model)
    if os.path.isabs(text) or text.startswith((".", "~")) or os.path.isdir(text):
        return f"the local directory {os.path.basename(os.path.normpath(text))!r}"
    return repr(text)


def _import_transformers():
    try:
        import transformers
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return transformers


class _VectorCache:
    """Encoded texts' ``(subword vectors, pooled vector)``, and their bytes."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.vectors = {}
        self.bytes = 0

    def add(self, encoded, max_bytes):
        size = sum(
            tokens.numel() * tokens.element_size() for tokens, _ in encoded.values()
        )
        if self.bytes + size > max_bytes:
            self.clear()
        self.vectors.update(encoded)
        self.bytes += size


# One cache per model and settings, shared by the encoders of a process.
_CACHES = {}


@dataclass
class ValueVectors:
    """Vectors of a sequence of values, stored once per distinct value.

    Attributes
    ----------
    index : torch.Tensor of shape (n_values,), dtype int64
        Row of each input value among the distinct values; -1 for a missing
        value (None or NaN).
    pooled : torch.Tensor of shape (n_distinct, dim), dtype float32
        One vector per distinct value (see `pooling`).
    tokens : torch.Tensor of shape (n_tokens, dim)
        The subword vectors of all distinct values, one after the other,
        without the special tokens (``[CLS]``, ``[SEP]``).
    offsets : torch.Tensor of shape (n_distinct + 1,), dtype int64
        Distinct value i owns ``tokens[offsets[i]:offsets[i + 1]]``.
    texts : list of str
        The encoded text of each distinct value.
    """

    index: torch.Tensor
    pooled: torch.Tensor
    tokens: torch.Tensor
    offsets: torch.Tensor
    texts: list

    def pooled_per_value(self):
        """(n_values, dim) float32: each value's pooled vector, zeros if missing."""
        out = torch.zeros(len(self.index), self.pooled.shape[1])
        present = self.index >= 0
        out[present] = self.pooled[self.index[present]]
        return out

    def padded(self, rows=None, max_tokens=None):
        """Subword vectors of the distinct values `rows` (all by default), padded.

        A row of -1 (a missing value) is all padding. Returns
        ``(vectors, mask)``: (R, T, dim) in the storage dtype, zero at padding,
        and (R, T) bool, T the longest of the rows (at most `max_tokens`,
        keeping each value's first subwords).
        """
        rows = (
            torch.arange(len(self.offsets) - 1)
            if rows is None
            else torch.as_tensor(rows, dtype=torch.long)
        )
        # A row of -1 (a missing value) has no subwords.
        present = rows >= 0
        bounds = torch.cat([self.offsets, self.offsets[-1:]])  # row -1 -> empty
        starts = bounds[rows.clamp(min=0)] * present
        lengths = (bounds[rows.clamp(min=0) + 1] - starts) * present
        if max_tokens is not None:
            lengths = lengths.clamp(max=max_tokens)
        width = int(lengths.max()) if len(rows) else 0
        steps = torch.arange(width)
        mask = steps < lengths[:, None]
        where = (starts[:, None] + steps).masked_fill(~mask, 0)
        vectors = self.tokens.new_zeros(len(rows), width, self.tokens.shape[1])
        vectors[mask] = self.tokens[where[mask]]
        return vectors, mask


class FrozenTextEncoder:
    """Encode text values with a frozen pre-trained Hugging Face encoder.

    The tokenizer and model load on first use (``AutoTokenizer`` and
    ``AutoModel``), so building the object is free and needs no
    ``transformers``.

    Parameters
    ----------
    model : str or path-like
        A model name of the Hugging Face hub or a local directory holding the
        model and its tokenizer (with ``HF_HUB_OFFLINE=1`` only local files are
        read). Code that comes with a model is never run
        (``trust_remote_code=False``); an encoder named by a saved model
        that ``RecordPairClassifier.load`` reads is read from local files
        only.
    template : str, default="{value}"
        How a value becomes text; ``{field}`` is replaced by the field's name
        and ``{value}`` by the value, e.g. Ditto's ``"COL {field} VAL {value}"``.
        Subword vectors of the template's words are kept too.
    layer : int, default=-1
        Which hidden layer to read (-1 the last, 0 the embeddings).
    pooling : {"mean", "cls"}, default="mean"
        The pooled vector: mean over the value's tokens (with ``[CLS]`` and
        ``[SEP]``, as sentence-transformers pools), or the ``[CLS]`` vector.
    max_length : int, default=64
        Longer texts are truncated to their first subwords (special tokens
        included).
    max_batch_tokens : int, default=8192
        Bound on the padded subwords of a batch, which bounds memory: the
        attention of a batch of B texts of T subwords costs B T^2 per head.
    storage_dtype : torch.dtype, default=torch.float16
        dtype of the stored subword vectors (the pooled ones are float32).
    device : str or torch.device, default="cpu"
    cache : bool, default=True
        Keep every encoded text's vectors, so that a value met again (in
        another split, another call) is not encoded again. The cache is
        shared by the encoders of the same model and settings in a process
        (clones in a grid search, refits); :meth:`clear_cache` empties it.
    max_cache_bytes : int, default=2**30
        Bound on the memory of the cache: when a call's new vectors would
        pass it, the cache is emptied first.

    Raises
    ------
    ValueError
        If a parameter is invalid: it is checked when the encoder is built
        (the encoder is no scikit-learn estimator, and the estimator that
        builds it passes on the user's ``text_encoder_options``).

    Examples
    --------
    >>> encoder = FrozenTextEncoder("sentence-transformers/all-MiniLM-L6-v2",
    ...                             template="COL {field} VAL {value}")
    >>> vectors = encoder.encode(["ipod nano", None, "ipod nano"], field="title")
    ... # doctest: +SKIP
    >>> vectors.index.tolist()  # doctest: +SKIP
    [0, -1, 0]
    """

    # The allowed values of the parameters (scikit-learn's declarations).
    _parameter_constraints: ClassVar[dict] = {
        "model": [str, os.PathLike],
        "template": [
            Condition(
                lambda v: isinstance(v, str) and "{value}" in v,
                "a str containing '{value}'",
            )
        ],
        "layer": [Interval(numbers.Integral, None, None, closed="neither")],
        "pooling": [StrOptions(set(POOLINGS))],
        # A text needs room for its special tokens and one subword.
        "max_length": [Interval(numbers.Integral, 3, None, closed="left")],
        "max_batch_tokens": [Interval(numbers.Integral, 3, None, closed="left")],
        "storage_dtype": [
            Condition(
                lambda v: isinstance(v, torch.dtype) and v.is_floating_point,
                "a floating torch dtype",
            )
        ],
        "device": [TorchDevice()],
        "cache": ["boolean"],
        "max_cache_bytes": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        model,
        *,
        template="{value}",
        layer=-1,
        pooling="mean",
        max_length=64,
        max_batch_tokens=8192,
        storage_dtype=torch.float16,
        device="cpu",
        cache=True,
        max_cache_bytes=2**30,
    ):
        validate_params(
            self._parameter_constraints,
            {
                "model": model,
                "template": template,
                "layer": layer,
                "pooling": pooling,
                "max_length": max_length,
                "max_batch_tokens": max_batch_tokens,
                "storage_dtype": storage_dtype,
                "device": device,
                "cache": cache,
                "max_cache_bytes": max_cache_bytes,
            },
        )
        self.model = model
        self.template = template
        self.layer = layer
        self.pooling = pooling
        self.max_length = max_length
        self.max_batch_tokens = max_batch_tokens
        self.storage_dtype = storage_dtype
        self.device = device
        self.cache = cache
        self.max_cache_bytes = max_cache_bytes
        self._tokenizer = self._model = None
        # A name read from a saved model: never contact the network for it.
        self._local_files_only = _FROM_SAVED_NAME.get()
        # Texts run through the model since construction (or clear_cache).
        self.n_encoded_ = 0

    def __getstate__(self):
        # The weights are not ours to copy: a pickled encoder reloads them.
        state = dict(self.__dict__)
        state.update(_tokenizer=None, _model=None)
        return state

    def _load(self):
        if self._model is None:
            tokenizer = self._load_tokenizer()
            model = self._from_pretrained("AutoModel")
            self._check_config(model.config)
            try:
                model = model.eval().requires_grad_(False).to(self.device)
            except (AssertionError, RuntimeError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"Cannot put the text encoder {display_name(self.model)} on device "
                    f"{self.device!r}: {_first_line(exc)}. Set text_encoder_options="
                    "{'device': ...} to an available device (e.g. 'cpu')."
                ) from exc
            self._tokenizer, self._model = tokenizer, model
        return self._tokenizer, self._model

    def _load_tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self._from_pretrained("AutoTokenizer")
        return self._tokenizer

    def _load_config(self):
        """The encoder's configuration alone (a small JSON file), checked."""
        config = self._from_pretrained("AutoConfig")
        self._check_config(config)
        return config

    def _from_pretrained(self, kind):
        """``transformers.<kind>.from_pretrained`` of the encoder, never running
        remote code, from local files only for a name read from a saved model;
        its failures become errors that say what to pass."""
        transformers = _import_transformers()
        logging = transformers.utils.logging
        bars = logging.is_progress_bar_enabled()
        # Loading is not the user's progress to watch (and would print on
        # every fit and load).
        logging.disable_progress_bar()
        local = getattr(self, "_local_files_only", False)
        try:
            if os.path.isabs(os.fspath(self.model)) and not os.path.isdir(self.model):
                # Else transformers takes the path for a malformed hub name.
                raise FileNotFoundError("no such directory")
            # trust_remote_code=False refuses a repository's own code without
            # asking (None would prompt on a terminal).
            return getattr(transformers, kind).from_pretrained(
                self.model, trust_remote_code=False, local_files_only=local
            )
        except ImportError:
            raise
        except (
            Exception
        ) as exc:  # OSError, ValueError, ...: whatever transformers raises
            name = display_name(self.model)
            if local:
                hint = (
                    "The saved model names this encoder, which is read from local "
                    "files only (a directory, or the Hugging Face cache). Name the "
                    "encoder it was trained with: RecordPairClassifier.load(path, "
                    "text_encoder=<hub name or directory>); naming a hub name there "
                    "allows downloading it."
                )
            else:
                hint = (
                    "Pass as text_encoder a Hugging Face hub name or a local "
                    "directory holding the model and its tokenizer."
                )
            message = (
                f"Cannot load the text encoder {name}: "
                f"{_first_line(exc, hide=os.fspath(self.model))}. {hint}"
            )
            raise (OSError if isinstance(exc, OSError) else ValueError)(
                message
            ) from exc
        finally:
            if bars:
                logging.enable_progress_bar()

    def _check_config(self, config):
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and 0 < positions < self.max_length:
            raise ValueError(
                f"max_length={self.max_length} is more than the {positions} positions of "
                f"the text encoder {display_name(self.model)}; set text_encoder_options="
                f"{{'max_length': ...}} to at most {positions}."
            )

    @property
    def dim(self):
        """Size of a vector (loads the model)."""
        return self._load()[1].config.hidden_size

    @property
    def _cache(self):
        key = (
            str(self.model),
            self.template,
            self.layer,
            self.pooling,
            self.max_length,
            str(self.storage_dtype),
        )
        return _CACHES.setdefault(key, _VectorCache())

    def clear_cache(self):
        """Forget the vectors of every encoded text (for every encoder of the
        same model and settings)."""
        self._cache.clear()

    def identity(self):
        """What identifies the encoder: a dict of plain data.

        ``model`` (a hub name as given; a local directory by its last
        component), ``revision`` (the hub commit, when the model came from the
        hub), ``config_sha256`` (of its configuration), ``tokenizer_sha256``
        (of its tokenizer: vocabulary, normalisation and special tokens) and
        ``weights_sha256`` (of every weight's name, dtype, shape and bytes),
        ``dim``, and the settings that change the vectors (``template``,
        ``layer``, ``max_length``).
        """
        tokenizer, model = self._load()
        return {
            **self._config_identity(model.config),
            "tokenizer_sha256": _tokenizer_sha256(tokenizer),
            "weights_sha256": _weights_sha256(model),
        }

    def _config_identity(self, config):
        """The identity's entries that the configuration alone gives."""
        import hashlib

        dim = config.hidden_size
        config = config.to_dict()
        revision = config.pop("_commit_hash", None)
        for volatile in ("_name_or_path", "transformers_version"):
            config.pop(volatile, None)
        config_text = json.dumps(config, sort_keys=True, default=str)
        text = os.fspath(self.model)
        local = os.path.isabs(text) or os.path.isdir(text)
        return {
            "model": os.path.basename(os.path.normpath(text)) if local else text,
            "revision": revision,
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            "dim": int(dim),
            "template": self.template,
            "layer": int(self.layer),
            "max_length": int(self.max_length),
        }

    def check_identity(self, saved):
        """Raise a ValueError unless this is the encoder that `saved` identifies.

        `saved` is an :meth:`identity` saved with a model. The configuration
        (a small file) is compared first, then the tokenizer, and only then
        are the weights loaded and compared, so a different encoder is
        refused before its weights are read. Keys that `saved` lacks (a
        model saved before ``tokenizer_sha256`` existed) are not compared.
        """

        def compare(found):
            differ = sorted(
                key
                for key in found
                if key != "model" and key in saved and saved[key] != found[key]
            )
            if differ:
                details = "; ".join(
                    f"{key}: saved {_short(saved.get(key))}, found "
                    f"{_short(found.get(key))}"
                    for key in differ
                )
                trained = saved.get("model")
                trained = (
                    display_name(trained)
                    if isinstance(trained, str)
                    else _short(trained)
                )
                raise ValueError(
                    f"The model was trained with the text encoder "
                    f"{trained}, but {display_name(self.model)} is a "
                    f"different encoder ({details}). Point text_encoder to the encoder "
                    "it was trained with (load(..., text_encoder=...) if it moved)."
                )

        compare(self._config_identity(self._load_config()))
        compare({"tokenizer_sha256": _tokenizer_sha256(self._load_tokenizer())})
        compare({"weights_sha256": _weights_sha256(self._load()[1])})

    def text(self, value, field=None):
        """The text that encodes `value` of field `field`."""
        return self.template.format(value=value, field="" if field is None else field)

    def encode(self, values, field=None):
        """Vectors of `values`, each distinct value encoded once.

        Parameters
        ----------
        values : sequence of str
            The values; None or NaN are missing (index -1, no vectors); other
            non-strings are converted with ``str``.
        field : str, default=None
            The field's name, for the template.

        Returns
        -------
        ValueVectors
        """
        values = np.asarray(values, dtype=object).reshape(-1)
        # None, or NaN (the only value unequal to itself).
        missing = np.equal(values, None) | (values != values)
        present = values[~missing].astype(str)
        distinct, inverse = (
            np.unique(present, return_inverse=True)
            if len(present)
            else (present, np.zeros(0, dtype=np.int64))
        )
        # The template is applied once per distinct value: distinct values
        # give distinct texts, as the template holds the value.
        distinct = [self.text(value, field) for value in distinct]
        index = np.full(len(values), -1, dtype=np.int64)
        index[~missing] = inverse.reshape(-1)
        cache = self._cache
        known = cache.vectors if self.cache else {}
        new = [t for t in distinct if t not in known]
        encoded = dict(zip(new, self._encode_texts(new)))
        if self.cache:
            cache.add(encoded, self.max_cache_bytes)
        found = [encoded[t] if t in encoded else known[t] for t in distinct]
        dim = found[0][1].shape[0] if found else self.dim
        lengths = torch.tensor([len(tokens) for tokens, _ in found], dtype=torch.long)
        return ValueVectors(
            index=torch.from_numpy(index),
            pooled=(
                torch.stack([pooled for _, pooled in found])
                if found
                else torch.zeros(0, dim)
            ),
            tokens=(
                torch.cat([tokens for tokens, _ in found])
                if found
                else torch.zeros(0, dim, dtype=self.storage_dtype)
            ),
            offsets=torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
            texts=distinct,
        )

    def _encode_texts(self, texts):
        """``(subword vectors, pooled vector)`` of each text, in order."""
        if not texts:
            return []
        tokenizer, model = self._load()
        ids = tokenizer(
            texts, truncation=True, max_length=self.max_length, add_special_tokens=True
        )["input_ids"]
        lengths = np.array([len(i) for i in ids])
        order = np.argsort(lengths, kind="stable")
        special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        out = [None] * len(texts)
        start = 0
        with torch.inference_mode():
            while start < len(order):
                # Shortest first: each batch is as wide as its last (longest) text.
                stop = start + 1
                while (
                    stop < len(order)
                    and (stop + 1 - start) * lengths[order[stop]]
                    <= self.max_batch_tokens
                ):
                    stop += 1
                rows = order[start:stop]
                batch = tokenizer.pad(
                    {"input_ids": [ids[i] for i in rows]}, return_tensors="pt"
                )
                batch = {k: v.to(self.device) for k, v in batch.items()}
                hidden = self._hidden(model, batch)
                mask = batch["attention_mask"].bool()
                if self.pooling == "mean":
                    weights = mask[..., None].to(hidden.dtype)
                    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
                else:
                    pooled = hidden[:, 0]
                kept = mask & ~torch.isin(batch["input_ids"], special.to(self.device))
                pooled = pooled.float().cpu()
                for j, i in enumerate(rows):
                    out[i] = (
                        hidden[j][kept[j]].to("cpu", self.storage_dtype),
                        pooled[j],
                    )
                start = stop
        self.n_encoded_ += len(texts)
        return out

    def _hidden(self, model, batch):
        if self.layer == -1:
            return model(**batch).last_hidden_state
        states = model(**batch, output_hidden_states=True).hidden_states
        return states[self.layer]


def _weights_sha256(model):
    """SHA-256 of every weight's name, dtype, shape and bytes."""
    import hashlib

    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        weights.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        weights.update(
            tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        )
    return weights.hexdigest()


def _tokenizer_sha256(tokenizer):
    """SHA-256 of what makes a tokenizer split text as it does: its
    serialisation (vocabulary, normalisation, pre-tokenisation, special
    tokens), or for a tokenizer without one its vocabulary and settings."""
    import hashlib

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        for key in _TOKENIZER_VOLATILE:
            state.pop(key, None)
    else:
        state = {
            "vocab": sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]),
            "settings": {
                key: tokenizer.init_kwargs.get(key) for key in _TOKENIZER_SETTINGS
            },
        }
    state["special_tokens"] = sorted(tokenizer.all_special_tokens)
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _short(value, n=80):
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_line(exc, hide=None):
    """The first line of an exception's message, without the path `hide`."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0].rstrip('.') if lines else ''}"
    if hide and os.path.isabs(hide):
        text = text.replace(hide, os.path.basename(os.path.normpath(hide)))
    return text[:300]


def cosine_similarities(left, right):
    """Cosine of each pair of rows of `left` and `right` (n, dim); NaN where a
    row is all zeros (a missing value)."""
    dots = (left * right).sum(-1)
    norms = left.norm(dim=-1) * right.norm(dim=-1)
    return torch.where(
        norms > 0,
        dots / norms.clamp(min=1e-12),
        torch.tensor(math.nan, dtype=dots.dtype),
    )


def subword_batch(per_field, rows):
    """The subword vectors of a batch's field values, padded: (B, F, T, dim).

    Parameters
    ----------
    per_field : list of ValueVectors
        The distinct values of each field (F of them).
    rows : ndarray or torch.Tensor of shape (B, F)
        Each pair's row among its field's distinct values; -1 when missing.

    Returns
    -------
    torch.Tensor
        Zero at padding and for missing values, in the storage dtype.
    """
    rows = torch.as_tensor(rows, dtype=torch.long)
    padded = [vectors.padded(rows[:, f])[0] for f, vectors in enumerate(per_field)]
    width = max((p.shape[1] for p in padded), default=0)
    return torch.stack(
        [torch.nn.functional.pad(p, (0, 0, 0, width - p.shape[1])) for p in padded],
        dim=1,
    )
