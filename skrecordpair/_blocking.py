"""Candidate generation (blocking): nearest neighbours by TF-IDF similarity."""

from __future__ import annotations

import numbers
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from ._pairs import as_text, require_columns
from ._progress import Progress, count, id_column_message, looks_like_id
from ._validation import POSITIVE, Condition, Interval, StrOptions, validate_params

__all__ = ["NearestNeighborBlocker"]

CANDIDATE_COLUMNS = ["left_id", "right_id", "similarity"]

# Entries of one block of the similarity matrix (query rows x fitted rows) that
# chunk_size=None allows: 2**24 float32 similarities are 64 MiB dense; with the
# sparse product and the top-k selection the peak is about 5 times that.
_CHUNK_ENTRIES = 2**24
# A block of similarities denser than this is searched as a dense array.
_DENSE_FRACTION = 0.05
_ANALYZERS = ("char", "char_wb", "word")
# Words for analyzer="word": runs of letters and digits, single characters
# included (sizes, versions and initials matter for matching).
_WORD_PATTERN = r"(?u)\b\w+\b"


class NearestNeighborBlocker(BaseEstimator):
    """Propose candidate pairs: the `k` most similar records by TF-IDF cosine.

    Scoring every pair of two tables is quadratic; blocking keeps, for each
    record of the left table, only the `k` records of the right table whose
    text is most similar, so that a classifier scores ``k * n_left`` pairs
    instead of ``n_left * n_right``. The similarity is learning-free: the
    cosine between TF-IDF vectors of character n-grams (or words) of the
    chosen fields.

    Use it like a scikit-learn nearest-neighbours estimator: :meth:`fit` on
    the table to search (the *right* table), then :meth:`candidates` for the
    records to look up (the *left* table). ``candidates()`` without a table
    deduplicates the fitted table. The result is a frame of
    ``left_id, right_id, similarity`` rows, the ids being the tables' index
    labels, so that ``pair_frame(left.loc[c.left_id], right.loc[c.right_id])``
    builds the pairs to classify (:func:`~skrecordpair.link` and
    :func:`~skrecordpair.deduplicate` do this for you).

    Parameters
    ----------
    fields : None or list, default=None
        The text to compare. None uses all the columns of the fitted table,
        joined by spaces into one text per record. A list names *views*: an
        entry that is a column name is one view, an entry that is a list of
        column names joins those columns into one view. Each view gets its
        own TF-IDF vocabulary and weights, see `weights`. For example
        ``fields=[["title", "brand", "price"], "title"]`` compares whole
        records and, once more, titles alone, which doubles the weight of the
        title.
    weights : None or list of float, default=None
        Weight of each view of `fields` (non-negative, not all zero). None
        gives every view the same weight. The record vector is the
        concatenation of the views' unit-length TF-IDF vectors, each scaled by
        the square root of its weight, normalised to unit length; the
        similarity is the cosine of two record vectors, between 0 and 1.
    k : int, default=10
        Largest number of candidates per query record. Fitted records with
        identical vectors are equally similar to any query; among them the
        records that come first in the fitted table are taken, so a query
        never gets more than `k` candidates, however many exact duplicates
        the fitted table holds.
    analyzer : {"char", "char_wb", "word"}, default="char"
        The TF-IDF features, as in
        :class:`~sklearn.feature_extraction.text.TfidfVectorizer`: character
        n-grams across word boundaries ("char"), character n-grams inside
        words padded with spaces ("char_wb"), or word n-grams, words being runs
        of letters and digits.
    ngram_range : tuple of (int, int), default=(2, 5)
        The smallest and largest n-gram length.
    sublinear_tf : bool, default=True
        Whether to use ``1 + log(tf)`` instead of the raw term frequency.
    max_df : float or int, default=1.0
        Ignore n-grams found in more than this share (float) or number (int)
        of the fitted records. An absolute cap such as ``max_df=200`` keeps
        the search fast on large tables, where frequent n-grams make the
        similarity matrix dense; see the Notes.
    blocking_keys : None, str or list of str, default=None
        Columns on which candidates must agree exactly (after conversion to
        text): neighbours are searched only among fitted records with the
        same values. Records with a missing key value get no candidates.
    chunk_size : int or None, default=None
        Number of query records whose similarities are computed at once,
        which bounds memory. None picks ``2**24 // n_fitted`` (at least 1),
        which keeps a block of similarities around 64 MiB.
    verbose : int, default=0
        0 is silent; 1 or more says what :meth:`fit` indexes and shows a
        progress bar of the records searched by :meth:`candidates`.

    Attributes
    ----------
    views_ : list of list
        The columns of each view.
    weights_ : ndarray of shape (n_views,)
        The view weights, summing to 1.
    vectorizers_ : list of TfidfVectorizer
        The fitted vectorizer of each view.
    index_ : pandas.Index
        The ids (index labels) of the fitted table.
    n_unique_ : int
        Number of distinct record vectors (and blocking keys) in the fitted
        table.

    See Also
    --------
    pair_completeness : Share of the true matches among the candidates.
    reduction_ratio : Share of all pairs that the candidates rule out.
    link : Match two tables end to end.
    deduplicate : Cluster the records of one table end to end.

    Notes
    -----
    The search is exact: each block of query records is multiplied with the
    sparse fitted matrix, and the `k` largest similarities of each row are
    kept with :func:`numpy.argpartition`. Memory stays bounded by
    `chunk_size` plus the output. Time grows with the number of (query,
    fitted) record pairs that share an n-gram; on large tables most records
    share common n-grams, so limit those with an absolute `max_df`: with
    ``max_df=200`` every n-gram links a query to at most 200 records, the
    time grows linearly with the table sizes, and records still share their
    rare n-grams (ids, dates, rare names).

    Pairs with similarity 0 (no common n-gram) are never returned, so a
    query can get fewer than `k` candidates.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import NearestNeighborBlocker
    >>> right = pd.DataFrame(
    ...     {"name": ["anna smith", "john doe", "jane roe"],
    ...      "city": ["berlin", "paris", "rome"]},
    ...     index=["r1", "r2", "r3"])
    >>> left = pd.DataFrame({"name": ["ana smith", "jon doe"],
    ...                      "city": ["berlin", "paris"]}, index=["l1", "l2"])
    >>> blocker = NearestNeighborBlocker(k=1).fit(right)
    >>> blocker.candidates(left)
      left_id right_id  similarity
    0      l1       r1    0.937...
    1      l2       r2    0.868...

    Without a table, ``candidates()`` deduplicates the fitted table: no
    record is paired with itself and every pair comes once.

    >>> people = pd.DataFrame({"name": ["anna smith", "ana smith", "john doe"]})
    >>> NearestNeighborBlocker(k=1).fit(people).candidates()
       left_id  right_id  similarity
    0        0         1    0.731...
    """

    # The allowed values of the parameters (scikit-learn's declarations).
    _parameter_constraints: ClassVar[dict] = {
        "fields": [
            None,
            Condition(
                lambda v: (
                    isinstance(v, (list, tuple))
                    and len(v) > 0
                    and all(not isinstance(e, (list, tuple)) or len(e) > 0 for e in v)
                ),
                "a non-empty list whose entries are column names or non-empty lists "
                "of column names",
            ),
        ],
        "weights": "no_validation",  # one per view of fields: checked in fit
        "k": [POSITIVE],
        "analyzer": [StrOptions(set(_ANALYZERS))],
        "ngram_range": [
            Condition(
                lambda v: (
                    isinstance(v, (tuple, list))
                    and len(v) == 2
                    and all(
                        isinstance(n, numbers.Integral) and not isinstance(n, bool)
                        for n in v
                    )
                    and 1 <= v[0] <= v[1]
                ),
                "a pair (min_n, max_n) of integers with 1 <= min_n <= max_n",
            )
        ],
        "sublinear_tf": ["boolean"],
        # A share of the fitted records, or a number of them.
        "max_df": [Interval(numbers.Real, 0, 1, closed="right"), POSITIVE],
        "blocking_keys": [
            None,
            Condition(
                lambda v: (
                    isinstance(v, str) or (isinstance(v, (list, tuple)) and len(v) > 0)
                ),
                "a column name or a non-empty list of column names",
            ),
        ],
        "chunk_size": [POSITIVE, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        fields=None,
        *,
        weights=None,
        k=10,
        analyzer="char",
        ngram_range=(2, 5),
        sublinear_tf=True,
        max_df=1.0,
        blocking_keys=None,
        chunk_size=None,
        verbose=0,
    ):
        self.fields = fields
        self.weights = weights
        self.k = k
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.sublinear_tf = sublinear_tf
        self.max_df = max_df
        self.blocking_keys = blocking_keys
        self.chunk_size = chunk_size
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Learn the TF-IDF vocabularies of `X` and index its records.

        Parameters
        ----------
        X : pandas.DataFrame
            The table to search (the right table), one record per row; the
            index labels are the record ids and must be unique.
        y : None
            Ignored.

        Returns
        -------
        self : NearestNeighborBlocker
            The fitted blocker.

        Raises
        ------
        TypeError
            If `X` is not a DataFrame or a parameter has the wrong type.
        ValueError
            If a parameter is invalid, `X` lacks a named column, its index
            has duplicates, or no view of `X` has any text.
        """
        validate_params(self._parameter_constraints, self.get_params(deep=False))
        check_record_table(X, "NearestNeighborBlocker.fit()")
        views = self._resolve_views(X.columns)
        weights = self._resolve_weights(len(views))
        self._keys = _key_columns(self.blocking_keys)
        _check_columns(X, [c for view in views for c in view] + self._keys, "fit")
        _warn_id_columns(X, views)

        progress = Progress(self.verbose, type(self).__name__)
        with progress.step(
            f"Indexing {count(len(X))} records ({len(views)} view(s), "
            f"{self.analyzer!r} n-grams {tuple(self.ngram_range)})"
        ):
            self._index(X, views, weights)
        progress.say(f"{count(self.n_unique_)} distinct records indexed.")
        return self

    def _index(self, X, views, weights):
        vectorizers, blocks = [], []
        for view in views:
            vectorizer = TfidfVectorizer(
                analyzer=self.analyzer,
                ngram_range=tuple(self.ngram_range),
                sublinear_tf=self.sublinear_tf,
                max_df=self.max_df,
                dtype=np.float32,
            )
            if self.analyzer == "word":
                vectorizer.set_params(token_pattern=_WORD_PATTERN)
            try:
                blocks.append(vectorizer.fit_transform(_view_text(X, view)))
            except ValueError as error:
                raise ValueError(
                    f"The view {view} of the fitted table has no n-gram to index "
                    f"(all values missing, or all n-grams removed by "
                    f"max_df={self.max_df!r}): {error}"
                ) from error
            # Only kept for introspection by scikit-learn; can be large.
            vectorizer.stop_words_ = None
            vectorizers.append(vectorizer)

        self.views_ = views
        self.weights_ = weights
        self.vectorizers_ = vectorizers
        self.index_ = X.index.copy()
        matrix = _combine(blocks, weights)

        if self._keys:
            key_text = _key_text(X, self._keys)
            codes, uniques = pd.factorize(key_text, use_na_sentinel=True)
            self._key_uniques = pd.Index(uniques)
        else:
            codes = np.zeros(len(X), dtype=np.int64)
            self._key_uniques = None
        group, first = _group_identical(matrix, codes)
        self._matrix = matrix[first]
        self._block = codes[first]
        self._record_group = group
        self._group_ptr, self._group_members = _members(group, len(first))
        self.n_unique_ = len(first)

    # ----------------------------------------------------------- candidates
    def candidates(self, X=None):
        """Candidate pairs for the records of `X`, or within the fitted table.

        Parameters
        ----------
        X : pandas.DataFrame or None, default=None
            The records to look up (the left table), with the columns of the
            views and blocking keys; the index labels are the record ids and
            must be unique. None deduplicates the fitted table: each record's
            `k` nearest *other* records, every unordered pair once, with
            the record that comes first in the fitted table on the left.

        Returns
        -------
        pandas.DataFrame
            One row per candidate pair with the columns ``left_id`` (index
            label in `X`, or in the fitted table when deduplicating),
            ``right_id`` (index label in the fitted table) and
            ``similarity`` (float, in (0, 1]). Rows are sorted by the position
            of the left record, then by decreasing similarity.

        Raises
        ------
        TypeError
            If `X` is neither None nor a DataFrame.
        ValueError
            If `X` lacks a column used during fit or its index has
            duplicates.
        """
        check_is_fitted(self, "vectorizers_")
        if X is None:
            return self._duplicates()
        check_record_table(X, "NearestNeighborBlocker.candidates()")
        _check_columns(
            X, [c for view in self.views_ for c in view] + self._keys, "candidates"
        )
        query = self.transform(X)
        if self._keys:
            codes = self._key_uniques.get_indexer(_key_text(X, self._keys))
        else:
            codes = np.zeros(len(X), dtype=np.int64)
        with self._bar(len(X)) as bar:
            q, u, sim = self._search(
                query, codes, self.k, exclude_self=None, progress=bar
            )
        left, right, sim = _expand(
            q,
            u,
            sim,
            self._group_ptr,
            self._group_members,
            np.full(len(X), self.k, dtype=np.int64),
        )
        return _frame(X.index, left, self.index_, right, sim)

    def candidates_within(self, ids):
        """The deduplication candidates found from some of the fitted records.

        ``candidates()`` split by record, for deduplicating a table piece by
        piece (:func:`skrecordpair.dask.deduplicate` calls it per
        partition): the pairs that the records `ids` (and their identical
        copies) propose among the whole fitted table. Over pieces that
        together hold every record, the union of the pairs, each kept once
        with its largest similarity, is ``candidates()``; a pair proposed
        from two pieces appears in both.

        Parameters
        ----------
        ids : array-like
            Index labels of the fitted table.

        Returns
        -------
        pandas.DataFrame
            As ``candidates()``: ``left_id``, ``right_id`` (the record that
            comes first in the fitted table on the left) and ``similarity``.

        Raises
        ------
        ValueError
            If an id is not an index label of the fitted table.
        """
        check_is_fitted(self, "vectorizers_")
        positions = self.index_.get_indexer(pd.Index(ids))
        if (positions < 0).any():
            unknown = pd.Index(ids)[positions < 0][:5].tolist()
            raise ValueError(
                "NearestNeighborBlocker.candidates_within() takes index labels of "
                f"the fitted table; these are not: {unknown}."
            )
        return self._duplicates(np.unique(self._record_group[positions]))

    def transform(self, X):
        """Return the unit-length TF-IDF record vectors of `X`.

        Parameters
        ----------
        X : pandas.DataFrame
            Records with the columns of the views.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_records, n_features), float32
            One row per record; the dot product of two rows is their
            similarity. All-zero for a record with no known n-gram.
        """
        check_is_fitted(self, "vectorizers_")
        check_record_table(X, "NearestNeighborBlocker.transform()")
        _check_columns(X, [c for view in self.views_ for c in view], "transform")
        if len(X) == 0:
            # TfidfVectorizer refuses empty input.
            n_features = sum(len(v.vocabulary_) for v in self.vectorizers_)
            return sp.csr_matrix((0, n_features), dtype=np.float32)
        blocks = [
            v.transform(_view_text(X, view))
            for v, view in zip(self.vectorizers_, self.views_)
        ]
        return _combine(blocks, self.weights_)

    def _duplicates(self, groups=None):
        """The deduplication pairs found from the distinct records `groups`
        (all when None): over any cover of the groups, the union of the
        pairs, each kept once with its largest similarity, is that of all."""
        k, ptr, members = self.k, self._group_ptr, self._group_members
        sizes = np.diff(ptr)
        norms = np.asarray(self._matrix.multiply(self._matrix).sum(axis=1)).ravel()
        # A record's nearest other records are first its identical copies
        # (similarity = its norm), up to k of them; the rest of its k come
        # from the nearest other groups.
        searchable = (norms > 0) & (self._block >= 0)
        copies = np.where(searchable, np.minimum(sizes - 1, k), 0)
        if groups is None:
            groups = np.arange(self.n_unique_)
        with self._bar(len(groups)) as bar:
            q, u, sim = self._search(
                self._matrix[groups],
                self._block[groups],
                k,
                exclude_self=groups,
                progress=bar,
            )
        a, b, s = _expand(
            groups[q], u, sim, ptr, members, k - copies, left_members=True
        )
        only = np.zeros_like(copies)
        only[groups] = copies[groups]
        c, d, t = _copies(ptr, members, only, norms)
        a, b, s = np.concatenate([a, c]), np.concatenate([b, d]), np.concatenate([s, t])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        # Each unordered pair once, with its largest similarity (the two
        # directions can differ in the last bits).
        order = np.lexsort((-s, hi, lo))
        lo, hi, s = lo[order], hi[order], s[order]
        first = np.ones(len(lo), dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        return _frame(self.index_, lo[first], self.index_, hi[first], s[first])

    def _bar(self, n):
        return Progress(self.verbose, type(self).__name__).bar(
            n, f"Searching the {self.k} nearest records", unit="records"
        )

    def _search(self, query, query_block, k, *, exclude_self, progress):
        """Top-k fitted unique rows per query row, within equal blocks.

        `exclude_self` is None, or each query row's own fitted unique row,
        which is then not its neighbour.
        """
        fitted, fitted_block = self._matrix, self._block
        out_q, out_u, out_s = [], [], []
        if self._keys:
            q_order = np.argsort(query_block, kind="stable")
            u_order = np.argsort(fitted_block, kind="stable")
            q_sorted, u_sorted = query_block[q_order], fitted_block[u_order]
            blocks = np.intersect1d(q_sorted[q_sorted >= 0], u_sorted[u_sorted >= 0])
            q_lo = np.searchsorted(q_sorted, blocks, "left")
            q_hi = np.searchsorted(q_sorted, blocks, "right")
            u_lo = np.searchsorted(u_sorted, blocks, "left")
            u_hi = np.searchsorted(u_sorted, blocks, "right")
            parts = [
                (q_order[a:b], u_order[c:d])
                for a, b, c, d in zip(q_lo, q_hi, u_lo, u_hi)
            ]
            # The query rows without a block are done at once.
            progress.update(query.shape[0] - sum(len(q_rows) for q_rows, _ in parts))
        else:
            parts = [(None, None)]
        if not parts:  # no query record shares a key value with a fitted one
            return _no_pairs()
        for q_rows, u_rows in parts:
            sub_query = query if q_rows is None else query[q_rows]
            sub_fitted = fitted if u_rows is None else fitted[u_rows]
            q, u, s = _top_k(
                sub_query,
                sub_fitted,
                k,
                self._chunk_rows(sub_fitted.shape[0]),
                exclude_self=_local_rows(exclude_self, q_rows, u_rows),
                progress=progress,
            )
            if q_rows is not None:
                q, u = q_rows[q], u_rows[u]
            out_q.append(q)
            out_u.append(u)
            out_s.append(s)
        return np.concatenate(out_q), np.concatenate(out_u), np.concatenate(out_s)

    def _chunk_rows(self, n_fitted):
        if self.chunk_size is not None:
            return int(self.chunk_size)
        return max(1, _CHUNK_ENTRIES // max(n_fitted, 1))

    # ------------------------------------------------------ views and weights
    def _resolve_views(self, columns):
        # fields is checked in fit: None, or a non-empty list of non-empty views.
        if self.fields is None:
            return [list(columns)]
        return [
            list(entry) if isinstance(entry, (list, tuple)) else [entry]
            for entry in self.fields
        ]

    def _resolve_weights(self, n_views):
        if self.weights is None:
            return np.full(n_views, 1.0 / n_views)
        weights = np.asarray(self.weights, dtype=float)
        if weights.shape != (n_views,):
            raise ValueError(
                f"weights must have one entry per view of fields ({n_views}); got "
                f"{self.weights!r}."
            )
        if (
            not np.all(np.isfinite(weights))
            or np.any(weights < 0)
            or weights.sum() <= 0
        ):
            raise ValueError(
                "weights must be finite, non-negative and not all zero; got "
                f"{self.weights!r}."
            )
        return weights / weights.sum()


# ---------------------------------------------------------------- helpers
def check_record_table(table, caller, name=None):
    """Require a DataFrame whose index labels (the record ids) are unique.

    `name` is the argument's name in the error messages, when `caller` takes
    several tables.
    """
    what = "a pandas DataFrame" if name is None else f"{name} to be a pandas DataFrame"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"{caller} expects {what} of records; got {type(table).__name__}."
        )
    if not table.index.is_unique:
        dup = table.index[table.index.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"The index labels of {name or 'the table'} passed to {caller} are the "
            f"record ids and must be unique; it repeats {dup}."
        )


def _check_columns(X, needed, method):
    require_columns(X, needed, f"The table passed to NearestNeighborBlocker.{method}()")


def _warn_id_columns(X, views):
    """Warn about a view column that holds the record ids: named like an id,
    a value for every record and no value twice, in a table left with a
    default index (the ids were read as a column, not as the index)."""
    if not isinstance(X.index, pd.RangeIndex) or len(X) < 2:
        return
    for column in dict.fromkeys(c for view in views for c in view):
        values = X[column]
        if looks_like_id(column) and values.notna().all() and values.is_unique:
            warnings.warn(
                id_column_message(
                    column,
                    "NearestNeighborBlocker",
                    "named like an id, a different "
                    "value for every record, and the table has a default index",
                ),
                UserWarning,
                stacklevel=3,
            )


def _key_columns(blocking_keys):
    # blocking_keys is checked in fit: None, a column name or a non-empty list.
    if blocking_keys is None:
        return []
    if isinstance(blocking_keys, str):
        return [blocking_keys]
    return list(blocking_keys)


def _view_text(X, columns):
    """One string per record: the non-missing values of `columns`, space-joined."""
    parts = [as_text(X[c]) for c in columns]
    if len(parts) == 1:
        return ["" if v is None else v for v in parts[0]]
    return [" ".join(v for v in row if v is not None) for row in zip(*parts)]


def _key_text(X, columns):
    """One key string per record, None when a key value is missing."""
    parts = [as_text(X[c]) for c in columns]
    return np.array(
        [
            None if any(v is None for v in row) else "\x1f".join(row)
            for row in zip(*parts)
        ],
        dtype=object,
    )


def _combine(blocks, weights):
    """Concatenate the views' unit vectors scaled by sqrt(weight), re-normalised."""
    if len(blocks) == 1:
        matrix = blocks[0].tocsr()
    else:
        matrix = sp.hstack(
            [b * np.float32(np.sqrt(w)) for b, w in zip(blocks, weights)],
            format="csr",
        )
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        matrix = sp.diags(scale.astype(np.float32)) @ matrix
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sort_indices()
    return matrix


def _group_identical(matrix, codes):
    """Group rows with identical vectors and block codes.

    Returns the group of every row and the first row of every group.
    """
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    keys = [
        indices[a:b].tobytes()
        + data[a:b].tobytes()
        + int(c).to_bytes(8, "little", signed=True)
        for a, b, c in zip(indptr[:-1], indptr[1:], codes)
    ]
    group, _ = pd.factorize(pd.Series(keys, dtype=object))
    first = np.full(group.max() + 1 if len(group) else 0, -1, dtype=np.int64)
    # The first row of each group: reversed assignment keeps the smallest row.
    rows = np.arange(len(group))
    first[group[::-1]] = rows[::-1]
    return group.astype(np.int64), first


def _members(group, n_groups):
    """CSR-like layout of the rows of every group: ``(ptr, members)``."""
    members = np.argsort(group, kind="stable")
    ptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=ptr[1:])
    return ptr, members


def _local_rows(self_rows, q_rows, u_rows):
    """The query rows' own fitted rows (`self_rows`, global) within a block
    whose query rows are `q_rows` and fitted rows `u_rows` (None: all);
    -1 where the own row is not in the block."""
    if self_rows is None or u_rows is None:
        return self_rows
    own = self_rows[q_rows]
    local = np.searchsorted(u_rows, own)  # u_rows ascends within a block
    local = np.minimum(local, len(u_rows) - 1)
    return np.where(u_rows[local] == own, local, -1)


def _top_k(query, fitted, k, chunk_rows, *, exclude_self, progress):
    """The `k` largest non-zero similarities of each query row.

    Returns ``(query_rows, fitted_rows, similarities)``. `exclude_self` is
    None, or each query row's own row in `fitted` (-1 for none), which is
    then not its neighbour. `progress` is told the query rows done, block by
    block.
    """
    n_query, n_fitted = query.shape[0], fitted.shape[0]
    self_rows = exclude_self
    exclude_self = self_rows is not None
    want = k + 1 if exclude_self else k
    fitted_t = fitted.T.tocsr()
    out_q, out_u, out_s = [], [], []
    for start in range(0, n_query, chunk_rows):
        sims = (query[start : start + chunk_rows] @ fitted_t).tocsr()
        q, u, s = _top_k_block(sims, want, n_fitted)
        q += start
        progress.update(min(chunk_rows, n_query - start))
        if exclude_self:
            keep = self_rows[q] != u
            q, u, s = q[keep], u[keep], s[keep]
        out_q.append(q)
        out_u.append(u)
        out_s.append(s)
    if not out_q:
        return _no_pairs()
    q, u, s = np.concatenate(out_q), np.concatenate(out_u), np.concatenate(out_s)
    if exclude_self:
        # A row absent from its own top k+1 (ties at similarity 1) kept k+1.
        order = np.lexsort((u, -s, q))
        q, u, s = q[order], u[order], s[order]
        rank = np.arange(len(q)) - np.searchsorted(q, q, "left")
        keep = rank < k
        q, u, s = q[keep], u[keep], s[keep]
    return q, u, s


def _top_k_block(sims, k, n_fitted):
    """Row-wise top-k of a CSR block of similarities, zeros dropped."""
    n_rows = sims.shape[0]
    sims.eliminate_zeros()
    counts = np.diff(sims.indptr)
    if sims.nnz == 0:
        return _no_pairs()
    if k >= n_fitted or counts.max() <= k:
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
        return rows, sims.indices.astype(np.int64), sims.data.copy()
    if sims.nnz > _DENSE_FRACTION * n_rows * n_fitted:
        dense = sims.toarray()
        cols = np.argpartition(dense, n_fitted - k, axis=1)[:, n_fitted - k :]
        vals = np.take_along_axis(dense, cols, axis=1).ravel()
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), k)
        keep = vals > 0
        return rows[keep], cols.ravel()[keep].astype(np.int64), vals[keep]
    # Sparse block: rows with at most k entries keep them all, the others are
    # partitioned one by one.
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    keep = np.repeat(counts <= k, counts)
    out_r = [rows[keep]]
    out_c = [sims.indices[keep].astype(np.int64)]
    out_v = [sims.data[keep]]
    indptr, indices, data = sims.indptr, sims.indices, sims.data
    for i in np.flatnonzero(counts > k):
        a, b = indptr[i], indptr[i + 1]
        top = np.argpartition(data[a:b], b - a - k)[b - a - k :]
        out_r.append(np.full(k, i, dtype=np.int64))
        out_c.append(indices[a:b][top].astype(np.int64))
        out_v.append(data[a:b][top])
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_v)


def _no_pairs():
    """Empty ``(query_rows, fitted_rows, similarities)``."""
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)


def _expand(q, u, sim, ptr, members, quota, *, left_members=False):
    """Replace fitted group ``u`` by its member records (and ``q`` likewise).

    Query row (or group) ``q`` takes at most ``quota[q]`` records in all: the
    groups by decreasing similarity, ties by group (the groups are numbered
    in the order of their first record), and within a group its records in
    table order. With `left_members`, the query rows are groups too
    (deduplication) and every member of ``q`` gets the records taken for
    ``q``.
    """
    # Groups are numbered in order of first appearance, so ordering by u is
    # ordering by the position of the group's first record.
    order = np.lexsort((u, -sim, q))
    q, u, sim = q[order], u[order], sim[order]
    sizes = ptr[u + 1] - ptr[u]
    # Records that the earlier rows of the same query already took.
    taken = np.cumsum(sizes) - sizes
    taken -= taken[np.searchsorted(q, q, "left")]
    counts = np.clip(quota[q] - taken, 0, sizes)
    right = members[_ranges(ptr[u], counts)]
    q, sim = np.repeat(q, counts), np.repeat(sim, counts)
    if left_members:
        counts = ptr[q + 1] - ptr[q]
        right, sim = np.repeat(right, counts), np.repeat(sim, counts)
        q = members[_ranges(ptr[q], counts)]
    return q, right, sim


def _copies(ptr, members, copies, norms):
    """Pairs of identical records: each record with the first ``copies[g]``
    other records of its group ``g``, similarity ``norms[g]``."""
    groups = np.flatnonzero(copies > 0)
    sizes = ptr[groups + 1] - ptr[groups]
    slot = _ranges(ptr[groups], sizes)  # every member, by group
    start = np.repeat(ptr[groups], sizes)
    rank = slot - start  # its rank within the group
    n_copies = np.repeat(copies[groups], sizes)
    # The first n_copies + 1 members of the group, less the record itself
    # (or less the last one when the record is not among them).
    n = n_copies + 1
    other = _ranges(np.zeros(len(n), dtype=np.int64), n)
    rank, n_copies = np.repeat(rank, n), np.repeat(n_copies, n)
    keep = np.where(rank <= n_copies, other != rank, other != n_copies)
    a = np.repeat(members[slot], n)[keep]
    b = members[np.repeat(start, n)[keep] + other[keep]]
    sim = np.repeat(np.repeat(norms[groups], sizes), n)[keep].astype(np.float32)
    return a, b, sim


def _ranges(starts, counts):
    """Concatenation of ``arange(start, start + count)`` for every pair."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - offsets + np.repeat(starts, counts)


def _frame(left_index, left, right_index, right, sim):
    order = np.lexsort((right, -sim, left))
    left, right, sim = left[order], right[order], sim[order]
    return pd.DataFrame(
        {
            "left_id": left_index[left],
            "right_id": right_index[right],
            "similarity": sim.astype(np.float64),
        }
    )
