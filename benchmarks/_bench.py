"""What every benchmark script shares: timing, peak memory, candidate pairs, the
environment record and the JSON result file.

Not a script: each ``benchmarks/*.py`` imports it (``python benchmarks/x.py``
puts this folder first on ``sys.path``). It imports skrecordpair only inside
:func:`environment`, so that a worker process running another checkout's
package (``inference_speed.py``) can import it too.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MAGELLAN_DATASETS = [
    "amazon_google",
    "dblp_acm",
    "walmart_amazon",
    "abt_buy",
    "beer",
    "fodors_zagats",
]


# ---------------------------------------------------------------------- timing


def timed_calls(func, X, repeats):
    """Call ``func(X)`` `repeats` times; the seconds of each call and pairs/s.

    Returns a dict: ``pairs`` (``len(X)``), ``seconds`` and
    ``pairs_per_second`` (one entry per call), and their medians
    ``median_seconds`` and ``median_pairs_per_second``. The median is the figure
    to quote: on a shared machine one call varies by a fifth and more.
    """
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(X)
        seconds.append(time.perf_counter() - start)
    return rates(len(X), seconds)


def rates(pairs, seconds):
    """The record :func:`timed_calls` returns, for calls already timed."""
    seconds = [float(s) for s in seconds]
    per_second = [pairs / s for s in seconds]
    return {
        "pairs": int(pairs),
        "seconds": seconds,
        "pairs_per_second": per_second,
        "median_seconds": float(np.median(seconds)),
        "median_pairs_per_second": float(np.median(per_second)),
    }


def in_turns(funcs, repeats):
    """Seconds of each of `funcs` (a dict name -> function of no argument), called
    in turns `repeats` times so that the machine's load hits them all alike."""
    seconds = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            seconds[name].append(time.perf_counter() - start)
    return seconds


# ---------------------------------------------------------------------- memory


def _status_kib(key):
    """A ``/proc/self/status`` entry (VmRSS, VmHWM) in KiB, None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _max_rss_kib():
    import resource

    # ru_maxrss is in KiB on Linux (bytes on macOS, where this is an estimate).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_mb():
    """The resident memory (RSS) of this process now, in MB."""
    kib = _status_kib("VmRSS")
    return (kib if kib is not None else _max_rss_kib()) / 1024


def peak_mb():
    """The highest resident memory of this process since it started or since
    :func:`reset_peak`, in MB."""
    kib = _status_kib("VmHWM")
    return (kib if kib is not None else _max_rss_kib()) / 1024


def reset_peak():
    """Reset the peak-RSS mark (Linux >= 4.0); False when not possible, and
    :func:`peak_mb` is then the peak since the process started."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak resident memory within a ``with`` block.

    After the block: ``start_mb`` (RSS on entry), ``peak_mb`` (the highest RSS
    in the block), ``above_start_mb`` and ``exact`` (False when the peak mark
    could not be reset, and ``peak_mb`` is the process's peak so far).
    """

    def __enter__(self):
        self.start_mb = rss_mb()
        self.exact = reset_peak()
        return self

    def __exit__(self, *exc):
        self.peak_mb = peak_mb()
        self.above_start_mb = self.peak_mb - self.start_mb
        return False

    def record(self):
        return {
            "start_mb": self.start_mb,
            "peak_mb": self.peak_mb,
            "above_start_mb": self.above_start_mb,
            "exact_peak": self.exact,
        }


# ------------------------------------------------------------------------ data


def resampled_pair_frame(left, right, n, seed=0):
    """A pair frame of `n` candidate pairs: a left and a right record drawn
    independently (with replacement) from the given records.

    Like the candidates of a blocking step, records recur across pairs, but the
    pairs themselves are almost all distinct (the same labelled pair repeated
    would let the network's per-batch encoding of distinct fields skip work it
    cannot skip on real candidates). Object columns are gathered with numpy
    ``take``: the new frame holds pointers to the existing string objects, so
    its cost is 8 bytes per cell.
    """
    rng = np.random.default_rng(seed)
    columns = {}
    for prefix, frame in (("left_", left), ("right_", right)):
        index = rng.integers(0, len(frame), n)
        for column in frame.columns:
            columns[prefix + column] = frame[column].to_numpy(dtype=object).take(index)
    return pd.DataFrame(columns, copy=False)


def magellan_candidates(data, n):
    """`n` candidate pairs of a tableA and a tableB record of a Magellan data set
    (a :func:`~skrecordpair.datasets.load_magellan` Bunch) drawn at random."""
    return resampled_pair_frame(
        data.left_table[data.fields], data.right_table[data.fields], n
    )


def magellan_folder(data, name):
    """``data / name``, checked to be a Magellan data set folder."""
    folder = Path(data) / name
    if not (folder / "tableA.csv").is_file():
        raise SystemExit(
            f"{folder} is not a Magellan data set folder (no tableA.csv); "
            "--data must be the folder holding the data set folders."
        )
    return folder


# ----------------------------------------------------------------- environment


def checkout(ref, into):
    """The package of commit `ref`, unpacked under `into`."""
    archive = subprocess.run(
        ["git", "archive", ref, "skrecordpair"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_in_checkout(root, script, *args):
    """Run ``script --worker *args`` in a fresh process that imports the
    skrecordpair under `root` (a checkout from :func:`checkout`, or
    ``ROOT``), and return the JSON object its last output line holds; that
    object names the ``package`` it imported, which is checked."""
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run(
        [sys.executable, str(script), "--worker", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"the worker in {root} failed:\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if not report["package"].startswith(str(root)):
        raise RuntimeError(f"the worker imported {report['package']}, not {root}")
    return report


def _git(*args):
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    # Not strip(): porcelain lines start with a space for unstaged changes.
    return out.stdout.rstrip()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment():
    """The code, machine and library versions a result was measured with."""
    import sklearn
    import skorch
    import torch

    import skrecordpair

    changed = _git("status", "--porcelain", "--untracked-files=no")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "git": {
            "commit": _git("rev-parse", "HEAD"),
            # Untracked files (earlier result files among them) do not count.
            "dirty": None if changed is None else bool(changed),
            "changed_files": []
            if not changed
            else [line[3:] for line in changed.splitlines()],
        },
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "usable_cores": usable,
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else None,
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "skrecordpair": skrecordpair.__version__,
        },
        "skrecordpair": {
            "path": str(Path(skrecordpair.__file__).parent),
            "CHUNK_SIZE": getattr(skrecordpair, "CHUNK_SIZE", None),
        },
    }


# --------------------------------------------------------------------- results


def add_arguments(parser, data=True, data_help=None):
    """The options every script has: ``--data`` (required, where the script
    reads data) and ``--out`` (where the JSON goes)."""
    if data:
        parser.add_argument(
            "--data",
            type=Path,
            required=True,
            help=data_help
            or "the folder holding the ER-Magellan data "
            "set folders, e.g. /work/shared/data/magellan",
        )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="a .json file, or a folder for "
        "<script>-<UTC time>-<commit>.json (default: benchmarks/results)",
    )
    return parser


def command_line(argv=None):
    """The command that ran this script, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):  # a script outside the repository
        script = script.relative_to(ROOT)
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", str(script), *map(str, args)])


class Run:
    """One run of a benchmark script: its environment, command, settings and
    figures, written as JSON by :meth:`write`.

    Create it first thing in ``main`` (the start time and the code state are
    those of the start), put the figures in ``results`` as they come.
    """

    def __init__(self, script, args, argv=None):
        self.script = script
        self.args = args
        self.started = datetime.now(timezone.utc)
        self.start_time = time.perf_counter()
        self.record = {
            "script": script,
            "command": command_line(argv),
            "argv": [sys.argv[0], *(sys.argv[1:] if argv is None else argv)],
            "started_utc": self.started.isoformat(timespec="seconds"),
            "environment": environment(),
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("out", "func")
            },
            "results": {},
        }
        self.results = self.record["results"]

    def path(self):
        """The JSON file: ``--out`` when it names one, else a new file in the
        ``--out`` folder named by the script, start time and commit, claimed
        on the first call, so that two runs started in the same second do
        not write over each other."""
        out = Path(self.args.out)
        if out.suffix == ".json":
            return out
        if getattr(self, "_claimed", None) is None:
            commit = (self.record["environment"]["git"]["commit"] or "nogit")[:7]
            if self.record["environment"]["git"]["dirty"]:
                commit += "-dirty"
            stem = f"{self.script}-{self.started:%Y%m%dT%H%M%SZ}-{commit}"
            out.mkdir(parents=True, exist_ok=True)
            for n in itertools.count(1):
                path = out / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
                try:
                    path.open("x").close()  # atomic: only one run gets the name
                except FileExistsError:
                    continue
                self._claimed = path
                break
        return self._claimed

    def write(self, path=None):
        """Write the JSON file (at `path`, or as ``--out`` says); return its path."""
        self.record["finished_utc"] = datetime.now(timezone.utc).isoformat(
            timespec="seconds"
        )
        self.record["wall_seconds"] = time.perf_counter() - self.start_time
        path = Path(path) if path is not None else self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.record, indent=1, default=_plain) + "\n")
        print(f"\nwrote {path}", flush=True)
        return path


def _plain(value):
    """JSON for what ``json`` does not know: numpy scalars and arrays, paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, argparse.Namespace)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def mean_sd(values):
    """Mean and standard deviation (ddof=0) of the per-seed figures."""
    values = np.asarray(values, dtype=float)
    return {
        "mean": float(values.mean()),
        "sd": float(values.std()),
        "values": values.tolist(),
    }
