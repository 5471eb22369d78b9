"""``n_jobs``: the CPU threads of fit, predict_proba and explain."""

import copy

import numpy as np
import pytest
import torch
from joblib import parallel_config
from numpy.testing import assert_allclose
from skorch.callbacks import Callback
from threadpoolctl import threadpool_info

from skrecordpair import RecordPairClassifier
from skrecordpair._matcher import featurizer as featurizer_module
from skrecordpair._threads import PAIRS_PER_THREAD, batch_threads, cpu_threads

from .conftest import TINY
from .matcher.test_saved_model_compatibility import DATA


def openmp_threads():
    """The thread count of every OpenMP runtime loaded (torch's and
    scikit-learn's, which runs the gradient boosting)."""
    return {
        info["filepath"]: info["num_threads"]
        for info in threadpool_info()
        if info["user_api"] == "openmp"
    }


class RecordThreads(Callback):
    """Records torch's threads at each training batch."""

    def __init__(self, seen):
        self.seen = seen

    def on_batch_begin(self, net, **kwargs):
        self.seen.append(torch.get_num_threads())


@pytest.fixture
def caller_threads():
    """The caller runs torch on 3 threads; the test may change it."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


@pytest.fixture
def boosting_threads(monkeypatch):
    """The OpenMP thread counts in force while the prior's boosting fits."""
    seen = []
    original = featurizer_module.HistGradientBoostingClassifier

    class Recording(original):
        def fit(self, X, y, **kwargs):
            seen.append(set(openmp_threads().values()))
            return super().fit(X, y, **kwargs)

    monkeypatch.setattr(featurizer_module, "HistGradientBoostingClassifier", Recording)
    return seen


@pytest.mark.parametrize("n_jobs", [0, -0, 1.5, "2", True])
def test_invalid_n_jobs_is_refused_in_fit(people, n_jobs):
    left, right, y = people
    with pytest.raises(ValueError, match=r"n_jobs must be .*; got"):
        RecordPairClassifier(**TINY, n_jobs=n_jobs).fit(left, right, y)


def test_invalid_n_jobs_is_refused_in_predict_and_explain(fitted, people):
    left, right, _ = people
    clf = copy.copy(fitted).set_params(n_jobs=0)
    for method in (clf.predict_proba, clf.predict, clf.explain):
        with pytest.raises(ValueError, match="n_jobs must be"):
            method(left[:2], right[:2])


@pytest.mark.parametrize("n_jobs, expected", [(None, 1), (1, 1), (3, 3)])
def test_n_jobs_limits_the_boosting(
    people, boosting_threads, caller_threads, n_jobs, expected
):
    left, right, y = people
    before = openmp_threads()
    RecordPairClassifier(**TINY, max_epochs=1, random_state=0, n_jobs=n_jobs).fit(
        left, right, y
    )
    # The 5 out-of-fold fits and the final one, every OpenMP runtime limited.
    assert boosting_threads == [{expected}] * 6
    assert openmp_threads() == before


def test_none_follows_joblib_parallel_config(people, boosting_threads):
    left, right, y = people
    with parallel_config(n_jobs=2):
        RecordPairClassifier(**TINY, max_epochs=1, random_state=0).fit(left, right, y)
    assert boosting_threads[0] == {2}


def test_minus_one_means_all_cores(people, boosting_threads):
    from joblib import cpu_count

    left, right, y = people
    RecordPairClassifier(**TINY, max_epochs=1, random_state=0, n_jobs=-1).fit(
        left, right, y
    )
    assert boosting_threads[0] == {cpu_count()}


def test_similarity_features_run_on_n_jobs_threads(people, monkeypatch, caller_threads):
    left, right, y = people
    workers = []
    original = featurizer_module.pair_similarities

    def recording(*args, workers, **kwargs):
        recording.workers.append(workers)
        return original(*args, workers=workers, **kwargs)

    recording.workers = workers
    monkeypatch.setattr(featurizer_module, "pair_similarities", recording)
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0, n_jobs=2)
    clf.fit(left, right, y).predict_proba(left, right)
    assert workers and set(workers) == {2}


@pytest.mark.parametrize(
    "batch_size, n_jobs, expected",
    [
        (16, 4, 1),  # small batches: one thread
        (2 * PAIRS_PER_THREAD, 4, 2),  # a thread per PAIRS_PER_THREAD pairs
        (2 * PAIRS_PER_THREAD, 1, 1),  # never more than n_jobs
        (2 * PAIRS_PER_THREAD, None, 1),
    ],
)
def test_network_trains_on_the_threads_its_batches_use(
    people, caller_threads, batch_size, n_jobs, expected
):
    left, right, y = people
    seen = []
    RecordPairClassifier(
        **{**TINY, "batch_size": batch_size},
        max_epochs=1,
        random_state=0,
        n_jobs=n_jobs,
        callbacks=[RecordThreads(seen)],
    ).fit(left, right, y)
    assert seen and set(seen) == {expected}
    assert torch.get_num_threads() == caller_threads


@pytest.mark.parametrize(
    "n_pairs, expected", [(5, 1), (3 * PAIRS_PER_THREAD, 3), (120, 4)]
)
def test_network_predicts_on_the_threads_its_batches_use(
    fitted, people, caller_threads, n_pairs, expected
):
    left, right, _ = people
    clf = copy.copy(fitted).set_params(n_jobs=4)
    seen = []
    hook = clf.net_.module_.register_forward_pre_hook(
        lambda module, inputs: seen.append(torch.get_num_threads())
    )
    try:
        clf.predict_proba(left[:n_pairs], right[:n_pairs])
    finally:
        hook.remove()
    assert seen and set(seen) == {expected}


def test_torch_threads_are_restored_after_each_call(people, caller_threads):
    left, right, y = people
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0, n_jobs=1)
    clf.fit(left, right, y)
    assert torch.get_num_threads() == caller_threads
    clf.predict_proba(left, right)
    assert torch.get_num_threads() == caller_threads
    clf.set_params(n_jobs=2).explain(left[:3], right[:3], n_steps=4)
    assert torch.get_num_threads() == caller_threads
    # Also when the call fails.
    with pytest.raises(ValueError):
        clf.fit(left, right, np.zeros(len(y)))
    assert torch.get_num_threads() == caller_threads


def test_predictions_do_not_depend_on_n_jobs(people):
    left, right, y = people
    proba = [
        RecordPairClassifier(**TINY, max_epochs=3, random_state=0, n_jobs=n_jobs)
        .fit(left, right, y)
        .predict_proba(left, right)
        for n_jobs in (1, 2)
    ]
    assert_allclose(proba[0], proba[1], atol=1e-6)


def test_cpu_threads_sets_and_restores_every_pool(caller_threads):
    before = openmp_threads()
    with cpu_threads(2):
        assert torch.get_num_threads() == 2
        assert set(openmp_threads().values()) == {2}
        assert batch_threads(10) == 1
        assert batch_threads(PAIRS_PER_THREAD + 1) == 2
        assert batch_threads(10_000) == 2
    assert torch.get_num_threads() == caller_threads
    assert openmp_threads() == before


def test_n_jobs_round_trips_and_old_models_have_none(fitted, tmp_path):
    copy.copy(fitted).set_params(n_jobs=2).save(tmp_path / "model")
    assert RecordPairClassifier.load(tmp_path / "model").n_jobs == 2
    # Saved before n_jobs existed.
    old = RecordPairClassifier.load(DATA / "reference_model_v1.zip")
    assert old.n_jobs is None
