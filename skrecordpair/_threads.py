"""How many CPU threads the estimator's work runs on (its ``n_jobs``).

Three kinds of threads do the work of ``fit``, ``predict_proba`` and
``explain``: torch's intra-op threads (the network), the OpenMP threads of
scikit-learn's gradient boosting (the similarity prior) and rapidfuzz's
workers (the similarity features, which take torch's thread count). torch and
scikit-learn each bring their own OpenMP runtime, whose threads busy-wait for
each other at the end of every parallel operation; on cores that other
processes also use, a thread that loses its core holds up the others at each
of the network's many small operations, and a fit becomes many times slower
than on one thread (``benchmarks/busy_cpu.py`` measures it). So every
call runs inside :func:`cpu_threads`, which gives all of them the estimator's
``n_jobs`` and gives back the caller's settings afterwards, and the network
takes no more threads than its batches can use (:func:`batch_threads`).
"""

from __future__ import annotations

import contextlib
import functools
import numbers

import torch
from joblib import effective_n_jobs
from threadpoolctl import ThreadpoolController

from ._validation import POSITIVE, Interval, validate_params

#: The allowed values of ``n_jobs``, as in scikit-learn: a positive number of
#: threads, -1 for all cores (-2 all but one...) or None.
N_JOBS_CONSTRAINT = [
    Interval(numbers.Integral, None, -1, closed="right"),
    POSITIVE,
    None,
]

# A batch of the network gains a thread per this many pairs at most: its
# operations are small (a GRU step over a batch of 64 pairs is a product of a
# 64 x 64 and a 64 x 192 matrix), and a thread that does not get its share of
# work only adds waiting.
PAIRS_PER_THREAD = 32


def n_threads(n_jobs):
    """The number of threads that `n_jobs` stands for.

    scikit-learn's meaning: None is 1, unless inside a
    :func:`joblib.parallel_config` (``parallel_backend``) context that says
    otherwise; -1 is every core this process may use, -2 all but one, and so
    on.
    """
    return max(1, int(effective_n_jobs(n_jobs)))


@functools.cache
def _controller():
    # Looking the thread pools up costs milliseconds (every loaded library is
    # inspected), too much for each predict_proba call on a few pairs; the
    # pools that matter (torch's and scikit-learn's OpenMP, the BLAS of
    # numpy and scipy) are loaded once skrecordpair is imported.
    return ThreadpoolController()


@contextlib.contextmanager
def torch_threads(n):
    """Run the block on `n` torch intra-op threads, then restore the caller's.

    ``torch.set_num_threads`` is process-wide (for the threads that torch
    starts later too), so the caller's setting is put back however the block
    ends.
    """
    previous = torch.get_num_threads()
    if n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def cpu_threads(n_jobs):
    """Run the block on the threads of `n_jobs` (see :func:`n_threads`):
    torch's, every OpenMP and BLAS thread pool's (the gradient boosting's
    among them), and so rapidfuzz's; restore the caller's settings after."""
    n = n_threads(n_jobs)
    with _controller().limit(limits=n), torch_threads(n):
        yield


def on_cpu_threads(method):
    """Decorate an estimator's `method` to run inside :func:`cpu_threads` of
    the estimator's ``n_jobs``."""

    @functools.wraps(method)
    def on_threads(self, *args, **kwargs):
        # Checked here too: predict_proba does not validate the parameters.
        # A model pickled before n_jobs existed runs as with None.
        n_jobs = getattr(self, "n_jobs", None)
        validate_params({"n_jobs": N_JOBS_CONSTRAINT}, {"n_jobs": n_jobs})
        with cpu_threads(n_jobs):
            return method(self, *args, **kwargs)

    return on_threads


def batch_threads(batch_pairs):
    """The torch threads worth giving batches of `batch_pairs` pairs: one per
    :data:`PAIRS_PER_THREAD` pairs, at most torch's current number (set by
    :func:`cpu_threads`), at least one."""
    return max(
        1, min(torch.get_num_threads(), -(-int(batch_pairs) // PAIRS_PER_THREAD))
    )
