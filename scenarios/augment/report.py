"""The terminal summary and ``report.html`` of `recarena augment`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recarena.simulator.atomic import write_text_atomically

from recarena.scenarios.html_blocks import escape, fmt, page, png, pyplot, table

VARIANT_COLOURS = {"real": "#777777", "simulated": "#1f77b4", "popularity": "#ff7f0e", "random": "#2ca02c", "shown": "#8c564b"}


def _interval(c: dict[str, Any], low: str = "ci_low", high: str = "ci_high", digits: int = 4) -> str:
    if c.get(low) is None:
        return "-"
    return f"[{c[low]:+.{digits}f}, {c[high]:+.{digits}f}]"


def format_summary(results: dict[str, Any]) -> str:
    """Per regime and recommender: the variants' NDCG@10 / Recall@10 and the effects with their intervals."""
    level = round(100 * results["level"])
    lines = [f"augmentation: {results['seeds']} replicate(s); effects with {level}% intervals over users and over replicates"]
    for regime, block in results["regimes"].items():
        volume = block["volumes"][0]
        lines.append(f"\n== {regime} training: {volume['train']:,} real interactions, {volume['simulated']:,} synthetic "
                     f"(x{block['synthetic_per_real']:.3f}) from {volume['simulated_users']} simulated users")  # fmt: skip
        for name, model in block["models"].items():
            scores = "  ".join(f"{v} {s['ndcg@10']['mean']:.4f}/{s['recall@10']['mean']:.4f}" for v, s in model["variants"].items())
            lines.append(f"  {name} (NDCG@10/Recall@10): {scores}")
            for c in model["comparisons"]:
                if c["metric"] != "ndcg@10":
                    continue
                lines.append(f"    {c['variant']:>10} vs {c['baseline']:<10} NDCG@10 {c['effect']:+.4f} users {_interval(c)} "
                             f"replicates {_interval(c, 'seed_ci_low', 'seed_ci_high')}: {c['verdict']}")  # fmt: skip
    return "\n".join(lines)


def _scores_plot(block: dict[str, Any], metric: str, title: str) -> str:
    plt = pyplot()
    names = list(block["models"])
    variants = list(next(iter(block["models"].values()))["variants"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(names), 3.4))
    width = 0.8 / len(variants)
    for j, variant in enumerate(variants):
        means = [block["models"][n]["variants"][variant][metric]["mean"] for n in names]
        spreads = [np.std(block["models"][n]["variants"][variant][metric]["per_seed"]) for n in names]
        ax.bar(np.arange(len(names)) + (j - (len(variants) - 1) / 2) * width, means, width, yerr=spreads, capsize=3,
               label=f"real + {variant}" if variant != "real" else "real only", color=VARIANT_COLOURS.get(variant))  # fmt: skip
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel(f"{metric.upper()} on the real test items")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png(fig)


def _effects_plot(block: dict[str, Any], metric: str, title: str) -> str:
    plt = pyplot()
    rows = [(name, c) for name, model in block["models"].items() for c in model["comparisons"] if c["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7.5, 0.8 + 0.32 * len(rows)))
    for y, (name, c) in enumerate(rows):
        colour = VARIANT_COLOURS.get(c["variant"]) if c["baseline"] == "real" else "#9467bd"
        ax.errorbar(c["effect"], y, xerr=[[c["effect"] - c["ci_low"]], [c["ci_high"] - c["effect"]]], fmt="o", color=colour, capsize=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(rows)), [f"{n}: {c['variant']} - {c['baseline']}" for n, c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"difference in {metric.upper()} (interval over users)")
    ax.set_title(title, fontsize=10)
    return png(fig)


def _model_table(block: dict[str, Any]) -> str:
    rows = []
    for name, model in block["models"].items():
        for variant, scores in model["variants"].items():
            rows.append([escape(name), escape(variant)] + [f"{fmt(scores[m]['mean'], 4)}" for m in ("ndcg@10", "recall@10")]
                        + [escape(", ".join(fmt(v, 4) for v in scores["ndcg@10"]["per_seed"]))])  # fmt: skip
    return table(["recommender", "training data", "NDCG@10", "Recall@10", "NDCG@10 per replicate"], rows, text_columns=(4,))


def _effects_table(block: dict[str, Any]) -> str:
    rows = []
    for name, model in block["models"].items():
        for c in model["comparisons"]:
            css = {"gain": "better", "loss": "worse"}.get(c["verdict"], "")
            rows.append([escape(name), escape(f"{c['variant']} - {c['baseline']}"), escape(c["metric"]), f"{c['effect']:+.4f}",
                         "-" if c["relative"] is None else f"{100 * c['relative']:+.1f}%", _interval(c),
                         _interval(c, "seed_ci_low", "seed_ci_high"), fmt(c["p_value"]),
                         f'<span class="{css}">{escape(c["verdict"])}</span>'])  # fmt: skip
    return table(["recommender", "comparison", "metric", "effect", "relative", "interval (users)", "interval (replicates)", "p",
                  "verdict"], rows)  # fmt: skip


def write_report(results: dict[str, Any], path: Path) -> Path:
    """The self-contained ``report.html`` of an augmentation run."""
    config = results["config"]
    level = round(100 * results["level"])
    parts = [f"<h1>Augmentation with simulated users: {escape(str(config['dataset']))}</h1>",
             (f'<p class="note">{escape(str(config["user_kind"]))} users browsing pages from <b>{escape(str(config["browse"]))}</b>, '
             f"{config['sessions']} session(s) of up to {config['pages']} pages of {config['slate_size']} items; at most "
             f"{config['ratio']} synthetic interactions per real training interaction of a user. Every recommender is trained on "
             "real only, real + simulated, and, at the same volume per user, real + each naive baseline ("
             f"{escape(', '.join(results['variants'][2:]))}), then ranks every item for the real test item of a leave-one-out split (the validation item, "
             "used for early stopping only, and the test item are the same for every variant). Effects are per-user "
             f"differences averaged over {results['seeds']} replicate(s), with {level}% intervals over users (paired bootstrap) "
             "and over replicates (t). A gain is claimed only when both intervals lie above zero.</p>")]  # fmt: skip
    for regime, block in results["regimes"].items():
        v = block["volumes"][0]
        describe = ("each user's first " f"{config['sparse_min']}-{config['sparse_max']} training interactions") if regime == "sparse" else "every training interaction"  # fmt: skip
        parts.append(f"<h2>{escape(regime)} regime: {escape(describe)}</h2>")
        parts.append(f'<p class="note">Replicate 1: {v["train"]:,} real training interactions of {v["users"]} users; '
                     f"{v['simulated']:,} simulated from {v['simulated_users']} users ({block['synthetic_per_real']:.3f} per real "
                     f"one on average); {', '.join(f'{v[b]:,} {b}' for b in results['variants'][2:])} at the same volume.</p>")  # fmt: skip
        parts.append(_model_table(block))
        parts.append(_scores_plot(block, "ndcg@10", f"{regime}: NDCG@10 by training data (bars: sd over replicates)"))
        parts.append(_effects_table(block))
        parts.append(_effects_plot(block, "ndcg@10", f"{regime}: effects on NDCG@10"))
    files = results.get("run", {}).get("synthetic_files") or {}
    if files:
        rows = [[escape(regime), escape(kind), f'<span style="font-family:monospace">{escape(Path(p).name)}</span>']
                for regime, entries in files.items() for kind, p in entries.items()]  # fmt: skip
        parts.append("<h2>Synthetic data</h2>" + table(["regime", "variant", "file"], rows, text_columns=(2,)))
    timings = results.get("timings", {})
    parts.append(f'<p class="note">Wall time: {fmt(timings.get("total"), 1)} s (simulation {fmt(timings.get("simulation"), 1)} s, '
                 f"fitting and evaluation {fmt(timings.get('fits'), 1)} s).</p>")  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, page(f"recarena augment: {config['dataset']}", "\n".join(parts)))
