"""recordlinkage's annotation files: pairs written out to label in its browser
annotator, and the labels read back."""

from __future__ import annotations

import json

import pandas as pd

from .labels_file import LABEL_COLUMNS, short

__all__ = ["read_annotation_file", "write_annotation_file"]


def write_annotation_file(
    path, pairs, left, right=None, *, labels=None, left_name=None, right_name=None
):
    """Write pairs to label in recordlinkage's annotation file format.

    The file is what :func:`recordlinkage.write_annotation_file` writes (a
    JSON file for recordlinkage's browser annotator): each pair with both
    records, field by field. Label it there, then read it back with
    :func:`read_annotation_file` and :meth:`ActiveLearner.teach_many`.

    Parameters
    ----------
    path : str or path-like
        The JSON file to write.
    pairs : pandas.DataFrame
        The pairs, with ``left_id`` and ``right_id`` columns (e.g.
        :meth:`ActiveLearner.propose` or :func:`~skrecordpair.uncertain_pairs`).
    left, right : pandas.DataFrame
        The tables, indexed by record id; `right` None for deduplication.
    labels : array-like or None, default=None
        Labels already known (1, 0, or None/NA for unlabelled), one per pair,
        written as each pair's ``label``.
    left_name, right_name : str or None, default=None
        The data set names recorded in the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from skrecordpair import read_annotation_file, write_annotation_file
    >>> left = pd.DataFrame({"name": ["anna smith"]}, index=["l1"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe"]}, index=["r1", "r2"])
    >>> pairs = pd.DataFrame({"left_id": ["l1", "l1"], "right_id": ["r1", "r2"]})
    >>> path = Path(tempfile.mkdtemp()) / "pairs.json"
    >>> write_annotation_file(path, pairs, left, right, labels=[1, None])
    >>> read_annotation_file(path)
      left_id right_id  label
    0      l1       r1      1
    1      l1       r2   <NA>
    """
    import recordlinkage

    # Unnamed levels: recordlinkage reads each pair's ids as pair[0], pair[1].
    index = pd.MultiIndex.from_arrays(
        [pairs["left_id"].to_numpy(), pairs["right_id"].to_numpy()]
    )
    recordlinkage.write_annotation_file(path, index, left, right, left_name, right_name)
    if labels is not None:
        labels = pd.array(labels, dtype="Int64")
        if len(labels) != len(pairs):
            raise ValueError(
                f"labels must have one entry per pair; got {len(labels)} "
                f"labels for {len(pairs)} pairs."
            )
        with open(path) as f:
            content = json.load(f)
        for item, label in zip(content["pairs"], labels):
            if not pd.isna(label):
                item["label"] = int(label)
        with open(path, "w") as f:
            json.dump(content, f, indent=2)


def read_annotation_file(path):
    """Read the labels of a recordlinkage annotation file.

    The whole file is checked before anything is returned, so that
    ``learner.teach_many(read_annotation_file(path).dropna())`` adds all of
    its labels or, on an error, none.

    Parameters
    ----------
    path : str or path-like
        A JSON file in recordlinkage's annotation format (version 1): an
        object with ``version`` and ``pairs``, each pair with
        ``identifiers.a.record``, ``identifiers.b.record`` and optionally
        ``label``.

    Returns
    -------
    pandas.DataFrame
        ``left_id``, ``right_id`` and ``label`` (Int64: 1 for a link, 0 for
        a distinct pair, NA when not annotated), one row per pair in file
        order. ``learner.teach_many(frame.dropna())`` adds the annotated
        pairs to a learner's labels (without ``dropna``, the pairs not
        annotated count as unsure).

    Raises
    ------
    ValueError
        If the file is not UTF-8 JSON, is nested too deeply, is not of
        version 1, a pair lacks one of the keys above or its record ids are
        not text or numbers, or a label is not 0, 1 or null.

    Examples
    --------
    A file as recordlinkage's annotator leaves it (see
    :func:`write_annotation_file` for writing one):

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from skrecordpair import read_annotation_file
    >>> pair = {"identifiers": {"a": {"dataset": None, "record": "l1"},
    ...                         "b": {"dataset": None, "record": "r1"}},
    ...         "fields": [], "label": 0}
    >>> path = Path(tempfile.mkdtemp()) / "pairs.json"
    >>> _ = path.write_text(json.dumps({"version": 1, "pairs": [pair]}))
    >>> read_annotation_file(path)
      left_id right_id  label
    0      l1       r1      0
    """
    name = repr(str(path))
    with open(path, "rb") as f:
        data = f.read()
    try:
        content = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"The annotation file {name} must be UTF-8 text; byte "
            f"{error.start} is {data[error.start : error.start + 1]!r}."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"The annotation file {name} is not JSON: {error}.") from None
    except RecursionError:
        raise ValueError(
            f"The annotation file {name} is nested too deeply to be an annotation file."
        ) from None
    if not isinstance(content, dict):
        raise ValueError(
            f"The annotation file {name} must hold a JSON object with "
            f"'version' and 'pairs'; it holds a {type(content).__name__}."
        )
    version = content.get("version")
    if type(version) is not int or version != _ANNOTATION_VERSION:
        raise ValueError(
            f"The annotation file {name} is of version "
            f"{short(version)}; this reader knows version "
            f"{_ANNOTATION_VERSION} (recordlinkage's) only."
        )
    pairs = content.get("pairs", _MISSING)
    if pairs is None:  # recordlinkage writes no pairs as null
        pairs = []
    if not isinstance(pairs, list):
        raise ValueError(
            f"The annotation file {name} must hold a list 'pairs'; "
            f"got {'none' if pairs is _MISSING else short(pairs)}."
        )
    rows = []
    for i, item in enumerate(pairs):
        ids = [_key(item, ("identifiers", side, "record"), name, i) for side in "ab"]
        for side, value in zip("ab", ids):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(
                    f"Pair {i} of the annotation file {name}: its "
                    f"identifiers.{side}.record must be a text or a "
                    f"number; got {short(value)}."
                )
        label = item.get("label")
        if label is not None and (
            not isinstance(label, (int, float)) or label not in (0, 1)
        ):
            raise ValueError(
                f"The labels in {name} must be 0 or 1 (or null); pair {i} "
                f"holds {short(label)}."
            )
        rows.append((*ids, None if label is None else int(label)))
    frame = pd.DataFrame(rows, columns=LABEL_COLUMNS, dtype=object)
    frame["label"] = pd.array(frame["label"].tolist(), dtype="Int64")
    return frame


_ANNOTATION_VERSION = 1
_MISSING = object()


def _key(item, keys, name, i):
    """``item[keys[0]][keys[1]]...``, or a ValueError naming the pair and the
    missing key."""
    value = item
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            where = ".".join(keys[: depth + 1])
            raise ValueError(
                f"Pair {i} of the annotation file {name} lacks {where} "
                f"(each pair needs {'.'.join(keys[:1])}.a.record and "
                f"{'.'.join(keys[:1])}.b.record)."
            )
        value = value[key]
    return value
