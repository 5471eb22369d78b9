"""Featurisation: tokenizer, vocabularies, and pair frames turned into token ids.

Everything here is fitted on the training fold only (in ``RecordPairClassifier.fit``),
so a cross-validation never leaks vocabulary from its test folds.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from .._pairs import pair_texts
from .._persistence import expect_keys, invalid

PAD = "<pad>"
UNK = "<unk>"
MISSING = "<missing>"
# Row 0 of every id table is padding; these reserved tokens can never be produced
# by the tokenizer, which splits "<" and ">" off as punctuation.
RESERVED_WORDS = (PAD, UNK, MISSING)
PAD_ID, UNK_ID, MISSING_ID = 0, 1, 2

# Numbers keep their decimal/thousands separators ("12.99", "1,000"); words are runs
# of letters and digits ("dsc-w55" -> "dsc", "-", "w55"); any other visible
# character is a token of its own.
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*(?![^\W_])|[^\W_]+|[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Split a string into lower-cased word, number and punctuation tokens.

    The text is first normalised with Unicode NFKC and case-folded, so that
    full-width forms, ligatures and case variants map to the same tokens.

    Parameters
    ----------
    text : str
        The text to split.

    Returns
    -------
    list of str
        The tokens, in order.

    Examples
    --------
    >>> from skrecordpair._matcher.tokens import tokenize
    >>> tokenize("Sony DSC-W55, 7.2 MP (silver)")
    ['sony', 'dsc', '-', 'w55', ',', '7.2', 'mp', '(', 'silver', ')']
    """
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


@dataclass
class Vocabulary:
    """Word and character vocabularies learnt from training records.

    Attributes
    ----------
    words : dict of str to int
        Word -> id; ids 0, 1 and 2 are padding, unknown and missing value.
    chars : dict of str to int
        Character -> id; ids 0 and 1 are padding and unknown.
    """

    words: dict
    chars: dict

    @classmethod
    def build(cls, token_counts: Counter, *, min_frequency: int, max_vocabulary):
        """Keep the words seen at least `min_frequency` times, most frequent first."""
        kept = [
            (w, c)
            for w, c in token_counts.items()
            if c >= min_frequency and w not in RESERVED_WORDS
        ]
        # Sort by count, then alphabetically, so the vocabulary never depends on the
        # order of the training rows.
        kept.sort(key=lambda wc: (-wc[1], wc[0]))
        if max_vocabulary is not None:
            kept = kept[: max(0, max_vocabulary - len(RESERVED_WORDS))]
        words = {w: i for i, w in enumerate(RESERVED_WORDS)}
        words.update((w, i) for i, (w, _) in enumerate(kept, start=len(words)))
        charset = sorted({ch for w in token_counts for ch in w})
        chars = {PAD: 0, UNK: 1}
        chars.update((ch, i) for i, ch in enumerate(charset, start=2))
        return cls(words=words, chars=chars)

    def to_state(self):
        """The vocabularies as plain data: each one's tokens in id order."""
        return {
            "words": _ordered(self.words, "word"),
            "chars": _ordered(self.chars, "character"),
        }

    @classmethod
    def from_state(cls, state, where="'vocabulary'"):
        """The vocabularies saved by :meth:`to_state`; ValueError if malformed."""
        expect_keys(state, ("words", "chars"), where)
        words = _token_list(state["words"], "words", RESERVED_WORDS)
        chars = _token_list(state["chars"], "chars", (PAD, UNK))
        return cls(
            words={w: i for i, w in enumerate(words)},
            chars={c: i for i, c in enumerate(chars)},
        )


@dataclass
class EncodedPairs:
    """Token ids of a batch of record pairs, ready for the network.

    Tokens are stored once per distinct string in a *token table*, so the network
    encodes the characters of each distinct token once per batch.

    Attributes
    ----------
    left, right : ndarray of shape (n_pairs, n_fields, n_tokens), dtype int32
        Token-table ids per field, 0 for padding. Every field holds at least one
        token (the missing-value marker when the value is missing).
    token_words : ndarray of shape (n_table,), dtype int64
        The word-vocabulary id of each token-table entry.
    token_chars : ndarray of shape (n_table, max_chars), dtype int64
        The character ids of each token-table entry, 0-padded.
    tokens : ndarray of shape (n_table,), dtype object
        The token strings; entry 0 is padding.
    similarity : ndarray of shape (n_pairs, n_similarity_features), dtype float32, \
            or None
        Per-field string similarities of each pair, for the classifier head.
    prior : ndarray of shape (n_pairs, n_classes), dtype float32, or None
        Log-probabilities of the similarity model, added to the network's logits.
    left_values, right_values : ndarray of shape (n_pairs, n_fields), dtype int64, \
            or None
        With a pre-trained text encoder: each field value's row among the
        distinct values of its field in `value_vectors` (-1 when missing).
    value_vectors : list of ValueVectors or None
        The subword vectors of each field's distinct values.
    """

    left: np.ndarray
    right: np.ndarray
    token_words: np.ndarray
    token_chars: np.ndarray
    tokens: np.ndarray
    similarity: np.ndarray | None = None
    prior: np.ndarray | None = None
    left_values: np.ndarray | None = None
    right_values: np.ndarray | None = None
    value_vectors: list | None = None

    def __len__(self):
        return self.left.shape[0]

    def by_length(self):
        """Indices that sort the pairs by their longest field (either side), and
        pairs of equal length by their token ids.

        Batching pairs of similar length keeps padding, and so wasted work, low.
        Sorting by content too makes the batches, and each pair's place in its
        batch, the same whatever the order of the pairs: matrix products may
        round a row differently at another place, so the probabilities would
        otherwise change in the last bits when the rows are shuffled.
        """
        n = len(self)
        rows = np.ascontiguousarray(
            np.concatenate(
                [self.left.reshape(n, -1), self.right.reshape(n, -1)], axis=1
            )
        )
        content = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
        by_content = np.argsort(content, kind="stable")
        longest = np.maximum(
            (self.left != 0).sum(-1).max(-1), (self.right != 0).sum(-1).max(-1)
        )
        return by_content[np.argsort(longest[by_content], kind="stable")]

    def distinct_by_length(self):
        """One pair of each distinct input, sorted as :meth:`by_length`
        sorts, and where each pair's input is among them.

        The network may round a row differently at another place in its
        batch, so copies of one pair would get probabilities that differ in
        the last bits, and which copy lands where would depend on the order of
        the pairs. Scoring each distinct input once gives them all the same
        probability, whatever the order.

        Returns
        -------
        rows : ndarray of int64
            The index of one pair of each distinct input (token ids,
            similarity features, prior, pre-trained values), sorted by the
            longest field, then by content.
        where : ndarray of int64 of shape (n_pairs,)
            Each pair's position in `rows`.
        """
        n = len(self)
        parts = [
            a
            for a in (
                self.left,
                self.right,
                self.similarity,
                self.prior,
                self.left_values,
                self.right_values,
            )
            if a is not None
        ]
        # The bytes of every input of a pair: equal bytes, equal input.
        content = np.concatenate(
            [np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in parts],
            axis=1,
        )
        content = (
            np.ascontiguousarray(content)
            .view(np.dtype((np.void, content.shape[1])))
            .ravel()
        )
        _, first, inverse = np.unique(content, return_index=True, return_inverse=True)
        longest = np.maximum(
            (self.left != 0).sum(-1).max(-1), (self.right != 0).sum(-1).max(-1)
        )
        order = np.argsort(longest[first], kind="stable")
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return first[order], position[inverse.reshape(-1)]

    def take(self, index):
        """The pairs at `index`, sharing this batch's token table."""
        return EncodedPairs(
            left=self.left[index],
            right=self.right[index],
            token_words=self.token_words,
            token_chars=self.token_chars,
            tokens=self.tokens,
            similarity=None if self.similarity is None else self.similarity[index],
            prior=None if self.prior is None else self.prior[index],
            left_values=None if self.left_values is None else self.left_values[index],
            right_values=None
            if self.right_values is None
            else self.right_values[index],
            value_vectors=self.value_vectors,
        )


class PairEncoder:
    """Turns the fields of a pair frame into :class:`EncodedPairs`.

    Parameters
    ----------
    fields : list of Field
        ``(name, left, right)`` columns of each field, from ``resolve_fields``.
    max_tokens_per_field : int
        Longer fields are truncated to their first tokens.
    max_chars_per_token : int
        Longer tokens keep their first characters for the character encoder.
    prepend_field_names : bool
        Put the tokens of the field name before each field's value tokens.
    """

    def __init__(
        self, fields, *, max_tokens_per_field, max_chars_per_token, prepend_field_names
    ):
        self.fields = fields
        self.max_tokens_per_field = max_tokens_per_field
        self.max_chars_per_token = max_chars_per_token
        self.prepend_field_names = prepend_field_names
        self.vocabulary = None

    def to_state(self):
        """The encoder's settings as plain data (the vocabulary is saved apart)."""
        return {
            "max_tokens_per_field": int(self.max_tokens_per_field),
            "max_chars_per_token": int(self.max_chars_per_token),
            "prepend_field_names": bool(self.prepend_field_names),
        }

    @classmethod
    def from_state(cls, fields, state, vocabulary, where="'encoder'"):
        """The encoder of `fields` saved by :meth:`to_state`, with `vocabulary`."""
        expect_keys(
            state,
            ("max_tokens_per_field", "max_chars_per_token", "prepend_field_names"),
            where,
        )
        for key in ("max_tokens_per_field", "max_chars_per_token"):
            value = state[key]
            if not (
                isinstance(value, int) and not isinstance(value, bool) and value >= 1
            ):
                raise invalid(f"encoder {key} must be a positive integer")
        if not isinstance(state["prepend_field_names"], bool):
            raise invalid("encoder prepend_field_names must be a boolean")
        encoder = cls(fields, **state)
        encoder.vocabulary = vocabulary
        return encoder

    def _columns(self):
        return [c for f in self.fields for c in f.columns]

    def _side_columns(self, side):
        return [
            (f.name, f.column(side)) for f in self.fields if f.column(side) is not None
        ]

    def _field_tokens(self, name, values):
        """Tokens of each distinct value of one column, plus the row -> value codes."""
        codes, uniques = pd.factorize(
            pd.Series(values, dtype=object), use_na_sentinel=True
        )
        prefix = tokenize(name) if self.prepend_field_names else []
        budget = max(1, self.max_tokens_per_field - len(prefix))
        token_lists = [prefix + (tokenize(u)[:budget] or [MISSING]) for u in uniques]
        # The last entry serves the rows whose value is missing (code -1).
        token_lists.append(prefix + [MISSING])
        return codes, token_lists

    def fit(self, X, *, min_frequency, max_vocabulary):
        """Learn the vocabularies from the training pair frame `X` (or its
        :class:`~skrecordpair._pairs.PairTexts`)."""
        texts = pair_texts(X, self._columns())
        counts = Counter()
        for side in ("left", "right"):
            for name, column in self._side_columns(side):
                codes, token_lists = self._field_tokens(name, texts[column])
                # Weight each distinct value by how many rows hold it.
                frequency = np.bincount(codes[codes >= 0], minlength=len(token_lists))
                for tokens, n in zip(token_lists, frequency):
                    if n:
                        for token in tokens:
                            counts[token] += int(n)
        self.vocabulary = Vocabulary.build(
            counts, min_frequency=min_frequency, max_vocabulary=max_vocabulary
        )
        return self

    def transform(self, X) -> EncodedPairs:
        """Encode a pair frame (or its :class:`~skrecordpair._pairs.PairTexts`)
        whose fields were validated by the caller."""
        texts = pair_texts(X, self._columns())
        columns = [
            (side, *self._field_tokens(name, texts[column]))
            for side in ("left", "right")
            for name, column in self._side_columns(side)
        ]
        lists = [
            token_list for _, _, token_lists in columns for token_list in token_lists
        ]
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        # Number the tokens in sorted order (0 is padding): the ids, and with them
        # the order in which the network meets distinct tokens and fields, then
        # depend on which pairs are encoded, not on their order.
        ids, tokens = pd.factorize(
            np.fromiter(chain.from_iterable(lists), dtype=object, count=lengths.sum()),
            sort=True,
        )
        tokens = np.concatenate([[PAD], np.asarray(tokens, dtype=object)])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        sides = {"left": [], "right": []}
        start = 0
        for side, codes, token_lists in columns:
            stop = start + len(token_lists)
            # One row per distinct value (the last for missing values), 0-padded.
            sizes = lengths[start:stop]
            table = padded(
                (ids[offsets[start] : offsets[stop]] + 1).astype(np.int32),
                sizes,
                sizes.max(),
            )
            sides[side].append(table[codes])  # code -1 picks the missing row
            start = stop
        for side, per_field in sides.items():
            width = max(a.shape[1] for a in per_field)
            out = np.zeros((texts.n_pairs, len(per_field), width), dtype=np.int32)
            for f, field_ids in enumerate(per_field):
                out[:, f, : field_ids.shape[1]] = field_ids
            sides[side] = out
        words = self.vocabulary.words
        token_words = np.array([words.get(t, UNK_ID) for t in tokens], dtype=np.int64)
        token_words[PAD_ID] = PAD_ID
        width = max(1, min(self.max_chars_per_token, max(len(t) for t in tokens)))
        token_chars = _char_ids(tokens, width, self.vocabulary.chars)
        token_chars[PAD_ID] = PAD_ID
        return EncodedPairs(
            left=sides["left"],
            right=sides["right"],
            token_words=token_words,
            token_chars=token_chars,
            tokens=tokens,
        )


def _char_ids(tokens, width, chars):
    """(n_tokens, width) character ids of `tokens`, cut to `width` characters
    and 0-padded; characters outside `chars` get 1 (unknown)."""
    points, lengths = code_points([t[:width] for t in tokens])
    ids = map_characters(points, lambda ch: chars.get(ch, 1), np.int64)
    return padded(ids, lengths, width)


def code_points(strings):
    """The code points of `strings`, one string after the other (uint32), and
    the length of each string."""
    lengths = np.fromiter(map(len, strings), np.int64, len(strings))
    return np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32), lengths


def map_characters(points, func, dtype):
    """``func(chr(c))`` for each code point of `points`: called once per
    distinct character, then looked up in a table indexed by code point."""
    present = np.flatnonzero(np.bincount(points)) if len(points) else points
    table = np.zeros(int(present.max(initial=0)) + 1, dtype=dtype)
    table[present] = [func(chr(c)) for c in present.tolist()]
    return table[points]


def row_positions(lengths):
    """For the items of consecutive rows of `lengths` items: each item's row
    and its position within the row."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    return rows, np.arange(len(rows)) - (np.cumsum(lengths) - lengths)[rows]


def padded(values, lengths, width):
    """A (len(lengths), width) array of `values` (at most `width` per row), the
    consecutive rows of `lengths` values each, 0-padded."""
    out = np.zeros((len(lengths), width), dtype=values.dtype)
    out[row_positions(lengths)] = values
    return out


def _ordered(mapping, what):
    """A vocabulary dict (token -> id, ids 0..n-1) as the list of its tokens."""
    tokens = sorted(mapping, key=mapping.__getitem__)
    if [mapping[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError(f"The {what} vocabulary's ids are not 0..n-1; cannot save it.")
    return tokens


def _token_list(tokens, what, reserved):
    if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
        raise invalid(f"the {what} vocabulary must be a list of strings")
    if tuple(tokens[: len(reserved)]) != tuple(reserved):
        raise invalid(f"the {what} vocabulary must start with {list(reserved)}")
    if len(set(tokens)) != len(tokens):
        raise invalid(f"the {what} vocabulary repeats entries")
    return tokens
