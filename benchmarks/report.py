"""Build ``benchmarks/RESULTS.md`` from the benchmarks' JSON result files.

Takes the latest run of each script among the given files (by default every
``benchmarks/results/*.json``) and renders it (the runs of a script in
``MERGED`` together: each of its rows from the latest run that has it): the
ER-Magellan ablation first,
then the other benchmarks, each with the command that produced it and the code
and machine it ran on. A benchmark without a JSON file gets its section of
``benchmarks/results/before-data.md``: figures quoted from runs made before
results were kept as data.

Usage::

    python benchmarks/report.py > benchmarks/RESULTS.md
    python benchmarks/report.py benchmarks/results/magellan-*.json --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BEFORE_DATA = RESULTS / "before-data.md"

# Sections after the ablation, in order: script name -> title.
OTHERS = {
    "scoring_memory": "Scoring at scale: throughput and peak memory",
    "inference_speed": "Inference speed against an earlier commit",
    "network_speed": "The network alone against an earlier commit",
    "explain": "Explanations: which field, and how fast",
    "explain_faithfulness": "Explanations: are they faithful to the model?",
    "blocking-magellan": "Blocking the ER-Magellan tables",
    "blocking-febrl": "Linking FEBRL4",
    "blocking-scale": "Blocking two large synthetic people tables",
    "active_learning": "Active learning: labels against F1",
    "threshold_sources": "Where the decision threshold comes from",
    "busy_cpu": "Training on a shared CPU: one thread against all cores",
    "same_results": "A refactor's check: the same fits as an earlier commit",
}

# Scripts whose runs each cover some of the data sets or configurations: their
# section shows every run, each row from the latest run that has it.
MERGED = {"explain_faithfulness"}
# Scripts whose runs cover some data sets each (``--datasets``): every data set
# is taken from the latest run that holds it.
BY_DATASET = {"active_learning", "magellan", "magellan-pretrained", "linkage"}
# Settings that a run must have to be shown in full (runs of other settings,
# experiments, are only listed): the defaults of the script.
SHOWN_SETTINGS = {
    "active_learning": {"batch_size": 10, "k": 10, "explore": 0.0, "evaluate": "test"}
}
# What runs made before a setting existed did, for the comparison above.
SETTINGS_BEFORE = {"evaluate": "test", "explore": 0.2}


def load(paths):
    """The latest run of each script among the JSON files at `paths`.

    For the scripts in ``MERGED``, the latest run with ``runs``, all of them,
    oldest first. For the scripts in ``BY_DATASET``, the latest run with its
    ``results`` holding each data set from the latest run that has it, and
    ``runs`` the runs used, oldest first.
    """
    latest, runs = {}, {}
    for path in paths:
        record = json.loads(Path(path).read_text())
        path = Path(path).resolve()
        # Relative to benchmarks/, where RESULTS.md is.
        record["file"] = (
            str(path.relative_to(HERE)) if path.is_relative_to(HERE) else str(path)
        )
        scripts = [record["script"]]
        if record["script"] == "magellan" and "pretrained" in record.get(
            "configurations", {}
        ):
            # The pre-trained encoder's ablation is slow, so it runs apart (on
            # fewer data sets or seeds) and gets its own section.
            scripts = ["magellan-pretrained"]
        for script in scripts:
            runs.setdefault(script, []).append(record)
            if (
                script not in latest
                or record["started_utc"] > latest[script]["started_utc"]
            ):
                latest[script] = record
    for script in MERGED & set(latest):
        latest[script]["runs"] = sorted(runs[script], key=lambda r: r["started_utc"])
    for script in BY_DATASET & set(latest):
        merged, used = {}, []
        wanted = SHOWN_SETTINGS.get(script, {})
        shown = [
            r
            for r in runs[script]
            if all(
                r["settings"].get(k, SETTINGS_BEFORE.get(k)) == v
                for k, v in wanted.items()
            )
        ]
        others = [r for r in runs[script] if r not in shown]
        for record in sorted(shown, key=lambda r: r["started_utc"]):
            if record["results"]:
                merged.update(record["results"])
        for record in sorted(shown, key=lambda r: r["started_utc"]):
            if any(
                merged.get(name) is result for name, result in record["results"].items()
            ):
                used.append(record)
        if used:
            latest[script] = {
                **used[-1],
                "results": merged,
                "runs": used,
                "other_runs": sorted(others, key=lambda r: r["started_utc"]),
            }
    return latest


def before_data():
    """The sections of ``before-data.md``, by script name."""
    if not BEFORE_DATA.is_file():
        return {}
    parts = re.split(
        r"^<!-- section: (\S+) -->\n", BEFORE_DATA.read_text(), flags=re.MULTILINE
    )
    return {name: text.strip() for name, text in zip(parts[1::2], parts[2::2])}


def provenance(record):
    """The command, the code and the machine of a run, as markdown lines."""
    env = record["environment"]
    git, machine, versions = env["git"], env["machine"], env["versions"]
    commit = f"`{git['commit'][:7]}`" if git.get("commit") else "an unknown commit"
    if git.get("dirty"):
        commit += f" with uncommitted changes ({', '.join(git['changed_files'])})"
    libraries = ", ".join(f"{name} {version}" for name, version in versions.items())
    return [
        f"`{record['command']}`",
        "",
        f"Code {commit}, run {record['started_utc']} ({record['wall_seconds'] / 60:.0f} "
        f"min); {machine['cpu']}, {machine['usable_cores']} of {machine['cores']} cores, "
        f"{machine['torch_threads']} torch threads"
        + (f", {machine['cuda']}" if machine.get("cuda") else "")
        + f"; {libraries}. Data: `{record['file']}`.",
        # Added to the JSON by whoever ran it: what the figures cannot say
        # themselves (another job on the machine, a run stopped part-way).
        *(["", f"**Note.** {record['note']}"] if record.get("note") else []),
    ]


def table(header, rows):
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]


def pm(stat, digits=1):
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def rate(value):
    return "" if value is None else f"{value:,.0f}"


# -------------------------------------------------------------------- magellan


def magellan(record, title="ER-Magellan: what the network adds"):
    settings, results = record["settings"], record["results"]
    used = record.get("runs", [record])
    # Merged runs may have run different configurations: all of them, in order.
    descriptions = {c: d for run in used for c, d in run["configurations"].items()}
    configs = list(descriptions)
    seeds = settings["seeds"]
    lines = [f"## {title}", ""]
    if len(used) > 1:
        lines += ["Each data set from the latest of these runs that holds it:", ""]
        for number, run in enumerate(used, 1):
            lines += [
                f"{number}. " + "\n   ".join(line for line in provenance(run) if line)
            ]
            lines += [f"   Data sets: {', '.join(run['results'])}.", ""]
    else:
        lines += [*provenance(record), ""]
    lines += [
        (
            f"Test F1 in %, mean ± sd over {len(seeds)} seed(s) "
            f"({', '.join(map(str, seeds))}, unless the *seeds* column says otherwise), "
            "the same seeds for every configuration. "
            "*Network's gain* is the default's F1 minus the similarity model's, seed by "
            "seed (*pretrained's gain* the same for the pre-trained configuration). "
            "Nothing is chosen on the test split."
        ),
        "",
    ]
    gain = "default" in configs and "similarity model alone" in configs
    pretrained_gain = "pretrained" in configs and "similarity model alone" in configs
    per_dataset_seeds = len(used) > 1
    header = [
        "dataset",
        *(["seeds"] if per_dataset_seeds else []),
        "test pairs (matches)",
        *configs,
        *(["network's gain"] if gain else []),
        *(["pretrained's gain"] if pretrained_gain else []),
        "DeepMatcher / Ditto",
    ]
    rows = []
    for name, r in results.items():
        published = r["published_f1"]
        run_seeds = [str(x["seed"]) for x in r["configurations"][configs[0]]["runs"]]
        rows.append(
            [
                name,
                *([", ".join(run_seeds)] if per_dataset_seeds else []),
                f"{r['test_pairs']:,} ({r['test_matches']})",
                *(
                    pm(r["configurations"][c]["summary"]["f1"])
                    if c in r["configurations"]
                    else "-"
                    for c in configs
                ),
                *(
                    [
                        f"{r['network_gain_f1']['mean']:+.1f} ± {r['network_gain_f1']['sd']:.1f}"
                    ]
                    if gain
                    else []
                ),
                *(
                    [
                        f"{r['pretrained_gain_f1']['mean']:+.1f} ± "
                        f"{r['pretrained_gain_f1']['sd']:.1f}"
                    ]
                    if pretrained_gain
                    else []
                ),
                " / ".join(f"{v:.1f}" for v in published.values()),
            ]
        )
    lines += table(header, rows)
    lines += ["", "The configurations:", ""]
    lines += [f"- *{c}*: {d}." for c, d in descriptions.items()]
    lines += [
        "",
        (
            f"Per configuration: precision, recall and F1 on the test split, F1 on "
            f"`valid` (what the threshold and early stopping see), the median fit time, "
            f"and pairs/s of `predict_proba` on the test split, on "
            f"{settings['candidates']:,} candidate pairs (a tableA and a tableB record "
            f"drawn at random, the scoring after blocking) and of `explain` (n_steps=50) "
            f"on the first {settings['explain_pairs']} test pairs (all, on smaller test "
            f"splits); each the median of "
            f"{settings['repeats']} calls, then the median over seeds."
        ),
        "",
    ]
    header = [
        "dataset",
        "configuration",
        "precision",
        "recall",
        "F1",
        "F1 per seed",
        "valid F1",
        "fit s",
        "test pairs/s",
        "candidates pairs/s",
        "explain pairs/s",
    ]
    rows = []
    for name, r in results.items():
        for c in (c for c in configs if c in r["configurations"]):
            s = r["configurations"][c]["summary"]
            rows.append(
                [
                    name,
                    c,
                    pm(s["precision"]),
                    pm(s["recall"]),
                    pm(s["f1"]),
                    ", ".join(f"{v:.1f}" for v in s["f1"]["values"]),
                    pm(s["valid_f1"]),
                    f"{s['fit_seconds_median']:.1f}",
                    rate(s["predict_test_pairs_per_second_median"]),
                    rate(s["predict_candidates_pairs_per_second_median"]),
                    rate(s.get("explain_pairs_per_second_median")),
                ]
            )
    lines += table(header, rows)
    if settings.get("params"):
        lines += [
            "",
            (f"Hyperparameters set (`--preset`, `--set`): `{settings['params']}`."),
        ]
    return lines


# --------------------------------------------------------------------- others


def scoring_memory(record):
    results = record["results"]
    model = results["model"]
    lines = [
        (
            f"The default model trained for {model['epochs']} epoch(s) on "
            f"{model['train_pairs']:,} pairs of `{Path(model['source']).name}` "
            f"({model['parameters']:,} parameters), saved, then loaded by a fresh process "
            "per size that scores that many candidate pairs in one `predict_proba` call. "
            "*Peak above model*: the highest RSS of the call minus the RSS after loading "
            "the model; it includes the input frame."
        ),
        "",
    ]
    rows = [
        [
            f"{r['pairs']:,}",
            f"{r['seconds']:.1f}",
            rate(r["pairs_per_second"]),
            f"{r['rss_model_mb']:,.0f}",
            f"{r['peak_mb']:,.0f}",
            f"{r['peak_above_model_mb']:,.0f}",
            f"{r['input_frame_mb']:,.0f}",
            r["threads"],
        ]
        for r in results["sizes"]
    ]
    return lines + table(
        [
            "pairs",
            "seconds",
            "pairs/s",
            "model RSS (MB)",
            "peak RSS (MB)",
            "peak above model (MB)",
            "of which input frame (MB)",
            "torch threads",
        ],
        rows,
    )


def inference_speed(record):
    ref = record["settings"]["ref"]
    lines = [
        (
            f"Each dataset's default model (2 epochs) is loaded in turns by fresh processes "
            f"of `{ref}` and of this code; median over {record['settings']['rounds']} "
            f"processes of each one's median of {record['settings']['repeats']} calls. "
            "Ratio below 1: faster now."
        ),
        "",
    ]
    rows = [
        [
            name,
            f"{r['pairs']:,}",
            r["task"],
            f"{r['ref_seconds']:.3f}",
            f"{r['now_seconds']:.3f}",
            f"{r['ratio']:.2f}",
            rate(r["ref_pairs_per_second"]),
            rate(r["now_pairs_per_second"]),
            f"{r['max_abs_difference']:.1g}",
        ]
        for name, rs in record["results"].items()
        for r in rs
    ]
    return lines + table(
        [
            "dataset",
            "pairs",
            "task",
            f"s, {ref}",
            "s, now",
            "ratio",
            f"pairs/s, {ref}",
            "pairs/s, now",
            "max abs. difference",
        ],
        rows,
    )


def network_speed(record):
    ref = record["settings"]["ref"]
    lines = [
        (
            f"Median of {record['settings']['repeats']} rounds, in turns in one "
            "process. Ratio below 1: faster now."
        ),
        "",
    ]
    rows = [
        [
            name,
            f"{r['test_pairs']:,}",
            f"{r['network_median_seconds']['ref']:.3f}",
            f"{r['network_median_seconds']['now']:.3f}",
            f"{r['network_ratio']:.2f}",
            f"{r['explain_median_seconds']['gradients_on']:.2f}",
            f"{r['explain_median_seconds']['gradients_off']:.2f}",
            f"{r['explain_ratio']:.2f}",
        ]
        for name, r in record["results"].items()
    ]
    return lines + table(
        [
            "dataset",
            "test pairs",
            f"network s, {ref}",
            "network s, now",
            "ratio",
            "explain s, gradients on",
            "explain s, off",
            "ratio",
        ],
        rows,
    )


def explain(record):
    r = record["results"]
    timing = r["explain"]
    shares = "; ".join(
        f"predicted {label}: {s['share']:.0%} of {s['explanations']}"
        for label, s in r["class_top_field_share"].items()
    )
    lines = [
        (
            f"The default model on `{record['settings']['dataset']}`: test accuracy "
            f"{r['test_accuracy']:.3f} ({r['epochs']} epochs). `explain` (n_steps=50): "
            f"{timing['pairs']} pairs at {timing['median_pairs_per_second']:,.0f} "
            f"pairs/s (median of {len(timing['seconds'])} calls). 'class' "
            f"(fodors_zagats' label leak) is the top field of the (pair, side) "
            f"explanations: {shares}."
        ),
        "",
        f"Mean |attribution| per field over the {r['test_pairs']} test pairs:",
        "",
    ]
    sides = list(next(iter(r["mean_abs_attribution"].values())))
    rows = [
        [field, *(f"{v[s]:.3f}" for s in sides)]
        for field, v in r["mean_abs_attribution"].items()
    ]
    return lines + table(["field", *sides], rows)


def explain_faithfulness(record):
    runs = record.get("runs", [record])
    settings = record["settings"]
    lines = [
        (
            f"Per data set, the default model or the pre-trained configuration "
            f"(`text_encoder`), at most {settings['max_epochs']} epochs; the first "
            f"{settings['max_pairs']} test pairs explained (n_steps="
            f"{settings['n_steps']}). One field of the right record is changed (a "
            "predicted match: a random value of the field; a non-match: the left "
            "record's value) and the match probability measured again. *top > random*: "
            "share of pairs where the field with the most evidence in the prediction's "
            "direction moves the probability more than a random other field (target "
            "80 %); *top > smallest*: than the field with the least evidence; the mean "
            "effects (fall of the probability for matches, rise for non-matches); "
            "Spearman: rank correlation per pair of evidence and effect over the "
            "fields (mean over the pairs where both vary); *where a field moves p*: "
            "the share over the pairs where some field, changed alone, moves the "
            "probability by at least 0.01 (in the others all effects tie near 0; "
            "runs before this column have '-'); *run*: the run below."
        ),
        "",
    ]
    rows = {}  # (model, dataset, reference) -> row; later runs replace earlier ones
    for number, run in enumerate(runs, 1):
        encoder = run["settings"].get("text_encoder")
        # A hub name, or a local directory's last two parts (often <name>/model).
        model = (
            "default"
            if encoder is None
            else f"text_encoder={'/'.join(Path(encoder).parts[-2:])}"
        )
        for name, r in run["results"].items():
            for reference, f in r["references"].items():
                per_class = " / ".join(
                    f"{f[k]['top_beats_random']:.0%} of {f[k]['pairs']}"
                    if f.get(k)
                    else "-"
                    for k in ("predicted_match", "predicted_non_match")
                )
                rows[model, name, reference] = [
                    model,
                    name,
                    reference,
                    str(r["pairs"]),
                    str(len(r["fields"])),
                    f"{f['top_beats_random']:.0%}",
                    per_class,
                    (
                        f"{f['where_some_field_moves']['top_beats_random']:.0%} of "
                        f"{f['pairs_some_field_moves']}"
                        if f.get("where_some_field_moves")
                        else "-"
                    ),
                    f"{f['top_beats_smallest']:.0%}",
                    f"{f['mean_effect_top']:.3f} / {f['mean_effect_random']:.3f} / "
                    f"{f['mean_effect_smallest']:.3f}",
                    "-" if f["spearman_mean"] is None else f"{f['spearman_mean']:.2f}",
                    str(number),
                ]
    lines += table(
        [
            "model",
            "dataset",
            "reference",
            "pairs",
            "fields",
            "top > random",
            "top > random (matches / non-matches)",
            "top > random where a field moves p",
            "top > smallest",
            "effect top / random / smallest",
            "Spearman",
            "run",
        ],
        sorted(rows.values(), key=lambda row: row[0] != "default"),
    )
    if len(runs) > 1:
        lines += ["", "Runs:"]
        for number, run in enumerate(runs, 1):
            lines += [
                "",
                f"{number}. " + "\n   ".join(line for line in provenance(run) if line),
            ]
    return lines


def blocking_magellan(record):
    rows = [
        [
            r["table"],
            r["config"],
            r["direction"],
            f"{r['n_left']:,} x {r['n_right']:,}",
            f"{r['PC']:.4f}",
            f"{r['RR']:.4f}",
            f"{r['cand/left']:.2f}",
            f"{r['seconds']:.1f}",
        ]
        for r in record["results"]["rows"]
    ]
    return table(
        [
            "table",
            "configuration",
            "direction",
            "records",
            "PC",
            "RR",
            "candidates / left",
            "seconds",
        ],
        rows,
    )


def blocking_febrl(record):
    r = record["results"]
    b = r["blocking"]
    lines = [
        (
            f"Classifier `{record['settings']['classifier']}` trained on "
            f"{r['training']['pairs']:,} FEBRL3 candidate pairs "
            f"({r['training']['matches']:,} matches); blocking alone: PC "
            f"{b['PC']:.4f}, RR {b['RR']:.6f}, {b['seconds']:.1f} s."
        ),
        "",
    ]
    rows = [
        [
            x["one_to_one"],
            f"{x['precision']:.4f}",
            f"{x['recall']:.4f}",
            f"{x['f1']:.4f}",
            f"{x['seconds']:.1f}",
        ]
        for x in r["link"]
    ]
    return lines + table(
        ["one_to_one", "precision", "recall", "F1", "link seconds"], rows
    )


def blocking_scale(record):
    r = record["results"]
    s, m = r["seconds"], r["memory"]
    return [
        (
            f"`{r['blocker']}` on {r['records'][0]:,} x {r['records'][1]:,} records "
            f"({r['true_links']:,} true links): fit {s['fit']:.1f} s (peak "
            f"{m['fit']['peak_mb'] / 1024:.2f} GiB), candidates {s['candidates']:.1f} s "
            f"(peak {m['candidates']['peak_mb'] / 1024:.2f} GiB); "
            f"{r['candidates_per_left']:.2f} candidates per left record, PC "
            f"{r['PC']:.4f}, RR {r['RR']:.6f}."
        ),
    ]


def active_learning(record):
    lines = [
        (
            "Test F1 in %, mean ± sd over the seeds, of the similarity model fitted on "
            "the labels that `ActiveLearner` chose (*loop*) and on as many candidates "
            "drawn at random (*random*), against the number of labels; a simulated "
            "labeller answers from the truth. FEBRL4: link F1 (all the true links "
            "count). Magellan: F1 on the `test` split, whose pairs are never proposed, "
            "the truth being the matches of `train` and `valid`; *whole train* is the "
            "same model fitted on the whole `train` split (threshold 0.5, and in "
            "brackets with the threshold chosen on `valid`). *Whole pool* is the same "
            "model fitted on every candidate pair of the loop's pool, each labelled "
            "from the truth: what labelling the whole pool would give (seed 0). "
            "*On the pool*: F1 (threshold 0.5, mean of the seeds) on the pool's "
            "candidates that the loop did not label, the pairs that a user would "
            "link; the whole-train model was fitted on those that are `train` "
            "pairs, which favours it. "
            "*Ablation* (runs with `--ablation`), same run and seeds: the loop with "
            "the earlier default `explore=0.2` instead of 0, and the final model "
            "fitted on the labels alone (`pseudo_labels=0`). "
            "Nothing is chosen on the test split."
        ),
        "",
    ]
    for name, r in record["results"].items():
        summary = r["summary"]
        loop_threshold = "active_threshold" in summary
        ablation = "ablation_explore" in summary
        header = [
            "labels",
            "loop",
            "random",
            *(
                ["loop, threshold on the labels", "random, threshold on the labels"]
                if loop_threshold
                else []
            ),
            *(["loop, earlier explore (ablation)"] if ablation else []),
            "loop − random",
        ]
        rows = []
        for i, point in enumerate(summary["active"]):
            a, b = point["f1"], summary["random"][i]["f1"]
            row = [point["labels"], pm(_pct(a)), pm(_pct(b))]
            if loop_threshold:
                row += [
                    pm(_pct(summary["active_threshold"][i]["f1"])),
                    pm(_pct(summary["random_threshold"][i]["f1"])),
                ]
            if ablation:
                row.append(pm(_pct(summary["ablation_explore"][i]["f1"])))
            row.append(f"{100 * (a['mean'] - b['mean']):+.1f}")
            rows.append(row)
        ref = r.get("reference")
        title = f"**{name}**"
        if ref:
            title += (
                f": whole train ({ref['train_pairs']:,} pairs) "
                f"{100 * ref['f1_threshold_0.5']:.1f} "
                f"({100 * ref['f1_threshold_valid']:.1f})"
            )
        pool = r.get("whole_pool")
        if pool:
            title += (
                f"; whole pool ({pool['pairs']:,} candidates, "
                f"{pool['matches']:,} matches) {100 * pool['f1']:.1f}"
            )
        pools = [
            s["active"]["held_out_pool"]
            for s in r["per_seed"]
            if "held_out_pool" in s["active"]
        ]
        if pools:
            loop = sum(100 * p["loop"]["f1"] for p in pools) / len(pools)
            whole = sum(100 * p["whole_train"]["f1"] for p in pools) / len(pools)
            title += (
                f"; on the pool's {pools[0]['pairs']:,} unlabelled candidates "
                f"the loop's model at {r['budgets'][-1]} labels {loop:.1f}, the "
                f"whole-train model {whole:.1f}"
            )
        finals = [
            s["active"]["final_model"]
            for s in r["per_seed"]
            if "final_model" in s["active"]
        ]
        if finals:
            f1 = [100 * f["f1"] for f in finals]
            pseudo = (
                f" and {finals[0]['pseudo_labels']:,} pseudo-labels"
                if finals[0].get("pseudo_labels")
                else ""
            )
            title += (
                f"; RecordPairClassifier on the loop's {finals[0]['labels']} "
                f"labels{pseudo} {sum(f1) / len(f1):.1f} "
                f"({', '.join(f'{v:.1f}' for v in f1)})"
            )
        alone = [
            100 * s["ablation_labels_only"]["f1"]
            for s in r["per_seed"]
            if "ablation_labels_only" in s
        ]
        if alone:
            title += (
                f", on the labels alone (ablation, pseudo_labels=0) "
                f"{sum(alone) / len(alone):.1f} "
                f"({', '.join(f'{v:.1f}' for v in alone)})"
            )
        seeds = [s["seed"] for s in r["per_seed"]]
        lines += [title + f"; seeds {', '.join(map(str, seeds))}.", ""]
        lines += table(header, rows) + [""]
    for other in record.get("other_runs", []):
        settings = other["settings"]
        changed = ", ".join(
            f"{k} {settings.get(k, SETTINGS_BEFORE.get(k))}"
            for k in SHOWN_SETTINGS["active_learning"]
        )
        lines += [
            f"Another run, not shown ({changed}; "
            f"{', '.join(other['results'])}): `{other['file']}`.",
            "",
        ]
    return lines[:-1]


def threshold_sources(record):
    lines = [
        (
            "Test F1 in % of the similarity model (fitted on the whole `train` split) "
            "with its threshold at 0.5, at the best-F1 threshold of 5-fold "
            "out-of-fold predictions on the training pairs (one column entry per fold "
            "seed: what the training pairs alone tell), and at the best-F1 threshold "
            "on `valid` (what the Magellan benchmark's rows use). Thresholds in "
            "brackets."
        ),
        "",
    ]
    rows = []
    for name, r in record["results"].items():
        oof = ", ".join(
            f"{100 * x['f1']:.1f} ({x['threshold']:.2f})" for x in r["out_of_fold"]
        )
        rows.append(
            [
                name,
                f"{r['train_pairs']:,} ({r['train_matches']:,})",
                f"{100 * r['0.5']['f1']:.1f}",
                oof,
                f"{100 * r['valid']['f1']:.1f} ({r['valid']['threshold']:.3f})",
            ]
        )
    return lines + table(
        ["dataset", "train pairs (matches)", "0.5", "out-of-fold", "valid"], rows
    )


# -------------------------------------------------------------------- linkage


def _f1_cell(mode):
    return (
        f"{pm(_pct(mode['f1']))} ({mode['precision']['mean']:.2f}, "
        f"{mode['recall']['mean']:.2f})"
    )


def linkage(record, pair_level=None):
    """The end-to-end table: F1 of link/deduplicate per data set and row."""
    results = record["results"]
    rows = list(dict.fromkeys(r for d in results.values() for r in d["rows"]))
    lines = [
        (
            "F1 in % of the pairs that `link` (or `deduplicate` for *people*) returns, "
            "against the known matches, mean ± sd over the seeds, (precision, recall) in "
            "brackets; *1:1* with `one_to_one=True`. The protocol, the rows and the "
            "training pairs are in `benchmarks/linkage.py`'s docstring; every pair any "
            "row trained on is left out of the returned pairs and of the truth, for "
            "every row. *Pair-level* is the default's test F1 on the benchmark's own "
            "test pairs (the table below)."
        ),
        "",
    ]
    header = ["dataset", "pair-level"]
    for row in rows:
        header += [row, f"{row}, 1:1"]
    body = []
    for name, result in results.items():
        level = (pair_level or {}).get(name)
        cells = [name, "" if level is None else f"{level:.1f}"]
        for row in rows:
            r = result["rows"].get(row, {})
            cells += [
                _f1_cell(r["plain"]) if "plain" in r else "",
                _f1_cell(r["one_to_one"]) if "one_to_one" in r else "",
            ]
        body.append(cells)
    lines += table(header, body)
    lines += [
        "",
        (
            "Where the known matches are incomplete, precision undercounts: "
            "*judged precision* is over the returned pairs that carry a label "
            "in some split, *unjudged* the returned pairs that carry none "
            "(median over seeds). Blocking: the blocker's candidates per query "
            "record and its pair completeness on the scored truth."
        ),
        "",
    ]
    body = []
    for name, result in results.items():
        b = result["blocking"]
        for row, r in result["rows"].items():
            for mode in ("plain", "one_to_one"):
                if mode not in r:
                    continue
                unjudged = sorted(s[mode]["unjudged"] for s in r["per_seed"])
                body.append(
                    [
                        name,
                        row + (", 1:1" if mode == "one_to_one" else ""),
                        f"{b['candidates_per_record']:.1f}",
                        f"{b['pair_completeness']:.3f}",
                        f"{r[mode]['judged_precision']['mean']:.2f}",
                        f"{100 * r[mode]['judged_f1']['mean']:.1f}"
                        if "judged_f1" in r[mode]
                        else "",
                        unjudged[len(unjudged) // 2],
                        f"{np.median([s['fit_seconds'] for s in r['per_seed']]):.0f}",
                    ]
                )
    lines += table(
        [
            "dataset",
            "row",
            "candidates per record",
            "pair completeness",
            "judged precision",
            "F1 with judged precision",
            "unjudged",
            "fit s",
        ],
        body,
    )
    return lines


def _pct(stat):
    return {"mean": 100 * stat["mean"], "sd": 100 * stat["sd"]}


def busy_cpu(record):
    r = record["results"]
    settings = record["settings"]
    lines = [
        (
            f"The default model fitted on `{r['dataset']}`'s train split "
            f"({r['train_pairs']:,} pairs) and scoring its test split "
            f"({r['test_pairs']:,} pairs), median of {settings['repeats']} fits per cell, "
            "the two settings timed in turns. *Busy*: one other process spins a "
            f"pure-Python loop on core {settings['busy_core']}. *new default*: `n_jobs=None` "
            f"(one thread); *old behaviour*: `n_jobs={settings['old_threads']}` (the "
            "threads torch and OpenMP took before `n_jobs` existed)."
        ),
        "",
    ]
    conditions = [c for c in ("quiet", "busy") if c in r]
    rows = []
    for name in [n for n in r[conditions[0]] if isinstance(r[conditions[0]][n], dict)]:
        cells = {c: r[c][name] for c in conditions}
        fit = {c: cells[c]["fit"]["median_seconds"] for c in conditions}
        proba = {c: cells[c]["predict_proba"]["median_seconds"] for c in conditions}
        ratio = f"{fit['busy'] / fit['quiet']:.2f}" if len(fit) == 2 else ""
        rows.append(
            [
                name,
                *(f"{fit[c]:.1f}" for c in conditions),
                ratio,
                *(f"{proba[c]:.2f}" for c in conditions),
                f"{cells[conditions[0]]['test_f1']:.1%}",
            ]
        )
    return (
        lines
        + table(
            [
                "setting",
                *(f"fit s, {c}" for c in conditions),
                "busy / quiet",
                *(f"predict_proba s, {c}" for c in conditions),
                "test F1",
            ],
            rows,
        )
        + [
            "",
            "Largest difference of a test "
            "probability between the two settings: "
            + ", ".join(
                f"{c} {r[c]['max_abs_proba_difference']:.1g}" for c in conditions
            )
            + ".",
        ]
    )


def same_results(record):
    settings = record["settings"]
    epochs = settings.get("max_epochs") or "the default"
    lines = [
        (
            f"Each checkout (`{settings['ref']}` and this one) fits "
            f"`RecordPairClassifier(random_state=0)` ({epochs} max_epochs) on `train` "
            "with `validation_data=valid` in a fresh process, scores `test`, explains "
            f"its first {settings['explain_pairs']} pairs and saves the model; this "
            f"checkout then loads `{settings['ref']}`'s model. Largest absolute "
            "differences; zeros mean the same behaviour."
        ),
        "",
    ]
    rows = [
        [
            name,
            f"{r['test_pairs']:,}",
            f"{r['proba']:.2g}",
            f"{r['threshold']:.2g}",
            f"{r['attributions']:.2g}",
            f"{r['loaded_ref_model_proba']:.2g}",
        ]
        for name, r in record["results"].items()
    ]
    return lines + table(
        [
            "dataset",
            "test pairs",
            "probabilities",
            "threshold",
            "attributions",
            f"{settings['ref']}'s model loaded here",
        ],
        rows,
    )


RENDER = {
    "scoring_memory": scoring_memory,
    "inference_speed": inference_speed,
    "network_speed": network_speed,
    "explain": explain,
    "explain_faithfulness": explain_faithfulness,
    "blocking-magellan": blocking_magellan,
    "blocking-febrl": blocking_febrl,
    "blocking-scale": blocking_scale,
    "active_learning": active_learning,
    "threshold_sources": threshold_sources,
    "busy_cpu": busy_cpu,
    "same_results": same_results,
}


def render(latest):
    quoted = before_data()
    lines = [
        "# Benchmark results",
        "",
        (
            "Built by `python benchmarks/report.py` from the JSON files in "
            "[`results/`](results/) (the latest run of each script); do not edit by "
            "hand. How to run the benchmarks: [README.md](README.md). The narrative of "
            "earlier runs and of the changes they measured: [HISTORY.md](HISTORY.md)."
        ),
        "",
    ]
    pair_level = None
    if "magellan" in latest:
        pair_level = {
            name: r["configurations"]["default"]["summary"]["f1"]["mean"]
            for name, r in latest["magellan"]["results"].items()
            if "default" in r.get("configurations", {})
        }
    if "linkage" in latest:
        lines += ["## End to end: two tables in, matches out", ""]
        for run in latest["linkage"].get("runs", [latest["linkage"]]):
            lines += provenance(run) + [""]
        lines += linkage(latest["linkage"], pair_level) + [""]
    if "magellan" in latest:
        lines += magellan(latest["magellan"])
    else:
        lines += [
            "## ER-Magellan: what the network adds",
            "",
            quoted.get("magellan", "No run kept as data yet."),
        ]
    if "magellan-pretrained" in latest:
        lines += [""] + magellan(
            latest["magellan-pretrained"],
            "ER-Magellan: a frozen pre-trained encoder under the matching",
        )
    lines += ["", "## Other benchmarks"]
    for script, title in OTHERS.items():
        lines += ["", f"### {title}", ""]
        if script in MERGED and len(latest.get(script, {}).get("runs", ())) > 1:
            lines += RENDER[script](latest[script])
        elif script in latest:
            for run in latest[script].get("runs", [latest[script]]):
                lines += provenance(run) + [""]
            lines += RENDER[script](latest[script])
        else:
            lines.append(
                quoted.get(
                    script, "No run kept as data yet; see [HISTORY.md](HISTORY.md)."
                )
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="JSON result files (default: benchmarks/results/*.json)",
    )
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    files = args.files or sorted(RESULTS.glob("*.json"))
    text = render(load(files))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
