"""Paired inputs: the pair frame, field resolution and call-shape dispatch."""

from __future__ import annotations

import warnings
from collections import namedtuple
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["pair_frame"]


def pair_frame(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_prefix: str = "left_",
    right_prefix: str = "right_",
) -> pd.DataFrame:
    """Build a pair frame from a left and a right table, aligned by position.

    Row ``i`` of the result pairs row ``i`` of `left` with row ``i`` of `right`.
    The indexes of the inputs are ignored (the result has a fresh
    ``RangeIndex``), and nothing is sorted or dropped.

    Parameters
    ----------
    left : pandas.DataFrame
        The left records, one per row.
    right : pandas.DataFrame
        The right records, one per row; must have as many rows as `left`.
    left_prefix : str, default="left_"
        Prefix put before every column of `left`.
    right_prefix : str, default="right_"
        Prefix put before every column of `right`.

    Returns
    -------
    pandas.DataFrame
        One row per pair, with the columns ``<left_prefix><column>`` followed by
        ``<right_prefix><column>``.

    Raises
    ------
    TypeError
        If `left` or `right` is not a DataFrame.
    ValueError
        If the two frames have different numbers of rows, or a prefix is empty
        or both prefixes are equal.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import pair_frame
    >>> left = pd.DataFrame({"name": ["Hans", "Anna"]})
    >>> right = pd.DataFrame({"name": ["Hanz", "Ana"]})
    >>> pair_frame(left, right)
      left_name right_name
    0      Hans       Hanz
    1      Anna        Ana
    """
    for name, frame in (("left", left), ("right", right)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"pair_frame() expects pandas DataFrames; {name} is "
                f"{type(frame).__name__}."
            )
    if len(left) != len(right):
        raise ValueError(
            "The left and right frames must have the same number of rows (they are "
            f"paired by position); got {len(left)} left rows and {len(right)} "
            "right rows."
        )
    _check_prefixes(left_prefix, right_prefix)
    left = left.reset_index(drop=True).add_prefix(left_prefix)
    right = right.reset_index(drop=True).add_prefix(right_prefix)
    return pd.concat([left, right], axis=1)


class Sides:
    """What a tuple with ``left`` and ``right`` columns knows about its sides:
    shared by :class:`Field` and the similarity features' ``FieldFeatures``."""

    __slots__ = ()

    @property
    def two_sided(self):
        """Whether the field has a column on both sides."""
        return self.left is not None and self.right is not None

    @property
    def columns(self):
        """The field's columns, left then right, without the absent side."""
        return [c for c in (self.left, self.right) if c is not None]

    def column(self, side):
        """The column of `side` (``"left"`` or ``"right"``), None when absent."""
        return self.left if side == "left" else self.right


class Field(Sides, namedtuple("Field", ["name", "left", "right"])):
    """A compared field: its name and its column on each side.

    A side's column is None when the field exists on the other side only.
    """

    __slots__ = ()


def require_columns(frame, columns, what):
    """Raise unless `frame` has every one of `columns`.

    The one check, with one wording, of "does this frame have these
    columns" for every table, pair frame and labels frame of the package.

    Parameters
    ----------
    frame : pandas.DataFrame or sequence
        The frame, or its column names.
    columns : sequence
        The columns it must have.
    what : str
        The frame, as the message names it: ``"The table passed to
        NearestNeighborBlocker.fit()"``.

    Raises
    ------
    ValueError
        ``"<what> must have the columns <columns>; it lacks <missing> (its
        columns are <columns of frame>)."``
    """
    present = list(getattr(frame, "columns", frame))
    required = list(dict.fromkeys(columns))
    have = set(present)
    missing = [c for c in required if c not in have]
    if missing:
        raise ValueError(
            f"{what} must have the columns {required}; it lacks "
            f"{missing} (its columns are {present})."
        )


def _check_prefixes(left_prefix, right_prefix):
    if not isinstance(left_prefix, str) or not isinstance(right_prefix, str):
        raise TypeError(
            "left_prefix and right_prefix must be strings; got "
            f"{left_prefix!r} and {right_prefix!r}."
        )
    if not left_prefix or not right_prefix or left_prefix == right_prefix:
        raise ValueError(
            "left_prefix and right_prefix must be two different non-empty strings; "
            f"got {left_prefix!r} and {right_prefix!r}."
        )


def resolve_fields(columns, fields, left_prefix, right_prefix):
    """Map the `fields` parameter to :class:`Field` ``(name, left, right)`` triples.

    A side's column is ``None`` when the field exists on the other side only.

    Parameters
    ----------
    columns : sequence of str
        The columns of the pair frame.
    fields : None, list of str or list of tuple
        See :class:`~skrecordpair.RecordPairClassifier`.
    left_prefix, right_prefix : str
        The column prefixes.

    Returns
    -------
    list of Field
    """
    _check_prefixes(left_prefix, right_prefix)
    columns = [str(c) for c in columns]
    present = set(columns)
    if fields is None:
        right_names = {
            c[len(right_prefix) :] for c in columns if c.startswith(right_prefix)
        }
        resolved = [
            Field(c[len(left_prefix) :], c, right_prefix + c[len(left_prefix) :])
            for c in columns
            if c.startswith(left_prefix) and c[len(left_prefix) :] in right_names
        ]
        if not resolved:
            raise ValueError(
                f"No paired columns found: expected columns named "
                f"'{left_prefix}<field>' and '{right_prefix}<field>'; got columns "
                f"{columns}. Build the frame with pair_frame(left, right), or pass "
                "fields explicitly."
            )
        return resolved

    if isinstance(fields, (str, bytes)) or not isinstance(fields, Sequence):
        raise TypeError(
            "fields must be None, a list of field names or a list of "
            f"(left_field, right_field) tuples; got {fields!r}."
        )
    if len(fields) == 0:
        raise ValueError("fields must name at least one field; got an empty list.")
    resolved = []
    for field in fields:
        if isinstance(field, str):
            left_name = right_name = field
            name = field
        elif isinstance(field, tuple) and len(field) == 2:
            left_name, right_name = field
            if left_name is None and right_name is None:
                raise ValueError(
                    "A field pair must name a column on at least one side; got "
                    "(None, None)."
                )
            name = (
                left_name
                if right_name is None or left_name == right_name
                else (right_name if left_name is None else f"{left_name}|{right_name}")
            )
        else:
            raise TypeError(
                "Each entry of fields must be a field name or a (left_field, "
                f"right_field) tuple; got {field!r}."
            )
        left_col = None if left_name is None else left_prefix + str(left_name)
        right_col = None if right_name is None else right_prefix + str(right_name)
        missing = [
            c for c in (left_col, right_col) if c is not None and c not in present
        ]
        if missing:
            raise ValueError(
                f"Field {field!r} needs the column(s) {missing}, which the pair "
                f"frame does not have; its columns are {columns}."
            )
        resolved.append(Field(str(name), left_col, right_col))
    names = [r.name for r in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"fields lists a field more than once: {names}.")
    return resolved


def resolve_pair_args(method, args, left_prefix, right_prefix, *, with_y):
    """Turn the positional arguments of a public method into ``(X, y)``.

    ``(X,)`` / ``(X, y)`` pass through; ``(X_left, X_right)`` /
    ``(X_left, X_right, y)`` are combined with :func:`pair_frame`.

    Rows are paired by position. Indexes that hold the same unique labels in
    different orders (a Series `y` and the frames, or the two frames) are
    refused: they suggest rows meant to be matched by label. Unique indexes
    that share nearly all their labels (NEAR_MISS_SHARE), some at other
    positions, draw a warning for the same reason.
    """
    n = len(args)
    if with_y:
        if n == 2:
            X, y = args
            if isinstance(y, pd.DataFrame):
                raise TypeError(
                    f"{method}() received a DataFrame as y; to pass left and right "
                    f"records separately call {method}(X_left, X_right, y)."
                )
            if isinstance(X, pd.DataFrame):
                _check_y_order(method, "X", X.index, y)
            return X, y
        if n == 3:
            left, right, y = args
            if not isinstance(left, pd.DataFrame) or not isinstance(
                right, pd.DataFrame
            ):
                raise TypeError(
                    f"{method}(X_left, X_right, y) expects two DataFrames before y; "
                    f"got {type(left).__name__} and {type(right).__name__}."
                )
            _check_frames_order(method, left.index, right.index)
            _check_y_order(method, "X_left", left.index, y)
            _check_y_order(method, "X_right", right.index, y)
            return pair_frame(
                left, right, left_prefix=left_prefix, right_prefix=right_prefix
            ), y
        raise TypeError(
            f"{method}() takes (X, y) or (X_left, X_right, y); got {n} positional "
            "argument(s)."
        )
    X, right = args
    if right is None:
        return X, None
    if not isinstance(X, pd.DataFrame) or not isinstance(right, pd.DataFrame):
        raise TypeError(
            f"{method}(X_left, X_right) expects two DataFrames; got "
            f"{type(X).__name__} and {type(right).__name__}."
        )
    _check_frames_order(method, X.index, right.index)
    return pair_frame(
        X, right, left_prefix=left_prefix, right_prefix=right_prefix
    ), None


class PairTexts(dict):
    """The text of some columns of a pair frame, each converted once.

    A dict of column name to the column's :func:`as_text` array, with the
    number of pairs: built by :func:`pair_texts` once per call and handed to
    the encoder and the similarity features, which would otherwise each
    convert the same columns again.
    """

    def __init__(self, texts, n_pairs):
        super().__init__(texts)
        self.n_pairs = n_pairs


def pair_texts(X, columns):
    """The :class:`PairTexts` of `columns` of the pair frame `X`.

    `X` may already be a :class:`PairTexts` holding the columns: it is then
    returned as it is.
    """
    columns = list(dict.fromkeys(columns))
    if isinstance(X, PairTexts):
        missing = [c for c in columns if c not in X]
        if missing:
            raise KeyError(f"The texts lack the columns {missing}.")
        return X
    texts = {}
    for column in columns:
        values = X[column]
        if isinstance(values, pd.DataFrame):
            raise ValueError(
                f"The pair frame has more than one column named {column!r}."
            )
        texts[column] = as_text(values)
    return PairTexts(texts, len(X))


def _reordered(a, b):
    """Whether the indexes `a` and `b` hold the same unique labels in other orders."""
    return (
        len(a) == len(b)
        and a.is_unique
        and b.is_unique
        and not a.equals(b)
        and bool(a.isin(b).all())
    )


# The share of labels two indexes must have in common, some of them at other
# positions, for pairing by position to draw a warning: with nearly all
# labels shared, the rows were most likely meant to be matched by label.
NEAR_MISS_SHARE = 0.9


def _near_miss(a, b):
    """``(shared, n)`` when the unique indexes `a` and `b` of equal length share
    at least NEAR_MISS_SHARE of their labels but not all, and a shared label
    sits at another position; else None.

    Repeated labels are left alone: pairing by label is then ambiguous itself,
    and the record ids of candidate pairs repeat by design.
    """
    if len(a) != len(b) or not (a.is_unique and b.is_unique) or a.equals(b):
        return None
    where = b.get_indexer(a)
    shared = where >= 0
    moved = shared & (where != np.arange(len(a)))
    n_shared = int(shared.sum())
    if n_shared < len(a) and n_shared >= NEAR_MISS_SHARE * len(a) and moved.any():
        return n_shared, len(a)
    return None


def _check_y_order(method, name, index, y):
    if not isinstance(y, pd.Series):
        return
    if _reordered(index, y.index):
        raise ValueError(
            f"{method}(): y is a Series whose index holds the same labels as the index "
            f"of {name} in another order, but rows are paired by position, not by "
            f"label. Align them first, e.g. y.loc[{name}.index], or reset both "
            "indexes if the positions already match."
        )
    near = _near_miss(index, y.index)
    if near is not None:
        warnings.warn(
            f"{method}(): y is a Series whose index shares {near[0]} of its {near[1]} "
            f"labels with the index of {name}, some at other positions, but rows are "
            "paired by position, not by label. If they were meant to be matched by "
            f"label, align them first (e.g. y.reindex({name}.index)); if the "
            "positions already match, pass y.to_numpy() or reset the indexes to "
            "silence this warning.",
            UserWarning,
            stacklevel=4,
        )


def _check_frames_order(method, left, right):
    if _reordered(left, right):
        raise ValueError(
            f"{method}(): X_left and X_right have indexes with the same labels in "
            "another order, but records are paired by position, not by label. Align "
            "them first, e.g. X_right.loc[X_left.index], or reset both indexes if the "
            "positions already match."
        )
    near = _near_miss(left, right)
    if near is not None:
        warnings.warn(
            f"{method}(): the indexes of X_left and X_right share {near[0]} of their "
            f"{near[1]} labels, some at other positions, but records are paired by "
            "position, not by label. If they were meant to be matched by label, "
            "align them first (e.g. X_right.reindex(X_left.index)); if the positions "
            "already match, reset the indexes to silence this warning.",
            UserWarning,
            stacklevel=4,
        )


def as_text(values) -> np.ndarray:
    """Convert one column of values to an object array of str, ``None`` for missing.

    Numbers and booleans become their ``str``; NaN, None, ``pd.NA``, ``NaT`` and
    strings that are empty or only whitespace become ``None``. Strings that are
    not valid Unicode (lone surrogates) raise ValueError.
    """
    series = pd.Series(values, copy=False)
    missing = series.isna().to_numpy()
    text = series.astype(object).to_numpy(copy=True)
    text[missing] = None
    present = np.flatnonzero(~missing)
    if pd.api.types.infer_dtype(text, skipna=True) != "string":
        # Columns of strings, the usual case, skip this loop over the values.
        text[present] = [_value_text(value) for value in text[present]]
    _check_unicode(text[present], getattr(values, "name", None))
    blank = np.fromiter(
        (not value or value.isspace() for value in text[present]), bool, len(present)
    )
    text[present[blank]] = None
    return text


def _check_unicode(strings, column):
    """Reject strings holding lone surrogates (invalid Unicode, as left by
    ``bytes.decode(errors="surrogateescape")``): pandas' hash tables treat all
    such strings as equal, which would merge different values."""
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        bad = [value for value in strings if not _is_valid_unicode(value)]
        where = "" if column is None else f"Column {column!r}: "
        raise ValueError(
            f"{where}{len(bad)} value(s) are not valid Unicode text (they hold lone "
            f"surrogates), e.g. {bad[0]!r}. Decode the source bytes with "
            f"errors='replace' or clean the strings first."
        ) from None


def _is_valid_unicode(value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        # Integer columns with missing values arrive as floats: 1999.0 -> "1999".
        return str(int(value))
    return value if isinstance(value, str) else str(value)


#: The index levels of the pairs that link and deduplicate return.
PAIR_INDEX_NAMES = ["left_id", "right_id"]


def id_positions(table, ids, name):
    """The positions in `table` of the index labels `ids`; an id that is not
    one of them raises ValueError naming `name`."""
    positions = table.index.get_indexer(ids)
    if (positions < 0).any():
        unknown = pd.unique(np.asarray(ids, dtype=object)[positions < 0])[:5].tolist()
        raise ValueError(
            f"The blocker returned ids that are not index labels of {name}: {unknown}."
        )
    return positions


def pairs_at(left, left_pos, right, right_pos):
    """The pair frame of the records at these positions, indexed by their ids.

    The index, ``(left_id, right_id)``, travels with the pairs through the
    classifier, so that e.g. an explanation of a pair names its two records.
    """
    X = pair_frame(left.iloc[left_pos], right.iloc[right_pos])
    X.index = pd.MultiIndex.from_arrays(
        [left.index[left_pos], right.index[right_pos]], names=PAIR_INDEX_NAMES
    )
    return X
