"""What the long steps say when ``verbose`` asks for it.

Status lines go to stdout, as scikit-learn's ``verbose`` output and the table
of epochs that skorch prints for :class:`~skrecordpair.RecordPairClassifier`;
progress bars are tqdm's on stderr, as skorch's ``ProgressBar`` that the
classifier shows during training (tqdm comes with skorch, which requires it).
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class Progress:
    """Status lines and progress bars of one caller, silent when not `verbose`.

    Parameters
    ----------
    verbose : int or bool
        0 (or False) says nothing.
    name : str
        The caller, put in brackets before each line, as scikit-learn does.
    """

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name

    def __bool__(self):
        return bool(self.verbose)

    def say(self, message):
        """Print one status line."""
        if self.verbose:
            print(f"[{self.name}] {message}", flush=True)

    @contextmanager
    def step(self, message):
        """Say `message` before a step (what the wait is for), and its time
        after it."""
        self.say(f"{message} ...")
        start = time.perf_counter()
        yield
        self.say(f"{message}: done in {time.perf_counter() - start:.1f} s")

    def bar(self, total, description, unit="pairs"):
        """A tqdm progress bar counting `total` `unit`; a no-op when silent."""
        if not self.verbose:
            return _NoBar()
        import tqdm

        return tqdm.tqdm(
            total=total,
            desc=f"[{self.name}] {description}",
            unit=unit,
            unit_scale=total >= 10_000,
            mininterval=0.5,
        )


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def pass_verbose(estimator, verbose):
    """`estimator` (a clone), told the caller's `verbose` when it has a
    `verbose` parameter left at 0 (or False)."""
    own = estimator.get_params(deep=False).get("verbose", True)
    if verbose and not own:
        estimator.set_params(verbose=True if isinstance(own, bool) else verbose)
    return estimator


def count(n):
    """`n` with thousands separators, as the status lines print counts."""
    return f"{int(n):,}"


# ---------------------------------------------------------- id-like columns
def looks_like_id(name):
    """Whether a column name reads as an identifier: ``id``, ``*_id``, ``*ID``."""
    return isinstance(name, str) and (
        name.lower() == "id"
        or name.lower().endswith(("_id", "-id", " id"))
        or name.endswith(("ID", "Id"))
    )


def id_column_message(column, caller, why):
    """The warning for a column of record ids that `caller` compares as a field."""
    return (
        f"{caller} compares the column {column!r} as a field, but it looks like "
        f"the record ids ({why}). Ids say nothing about whether two records "
        f"match; make it the index of the table instead (pd.read_csv(..., "
        f"index_col={column!r}) or table.set_index({column!r})), or leave it out "
        f"of the fields."
    )
