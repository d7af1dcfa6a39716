"""What a person reads after a feedback loop: a terminal summary and a self-contained ``report.html``.

The page holds the setup, a table of each arm's first and last round with the change and its 95%
interval, the filter-bubble curves over rounds (top-genre share, genres per user, per-user and
intra-list genre diversity, shown and watched), the exposure and engagement curves (coverage,
exposure Gini, watch rate, rating, satisfaction) and LLM usage when LLM users ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recarena.simulator.atomic import write_text_atomically

from recarena.scenarios.html_blocks import escape, fmt, page, png, pyplot, table

LABELS = {
    "top_genre_share": "top-genre share per user (shown)", "genres_shown": "genres shown per user",
    "user_genre_diversity": "per-user genre diversity (shown)", "intra_list_diversity": "intra-list genre diversity",
    "top_genre_share_watched": "top-genre share per user (watched)", "genres_watched": "genres watched per user",
    "coverage": "catalogue coverage in the round", "cumulative_coverage": "cumulative coverage", "exposure_gini": "exposure Gini",
    "watch_rate": "watch rate", "mean_rating": "mean rating of watched", "satisfaction": "satisfaction (1-10)",
    "pages_per_session": "pages per session", "genre_diversity_shown": "genre diversity of all impressions",
}  # fmt: skip
BUBBLE_PANELS = ("top_genre_share", "genres_shown", "user_genre_diversity", "intra_list_diversity", "top_genre_share_watched", "genres_watched")
EXPOSURE_PANELS = ("coverage", "cumulative_coverage", "exposure_gini", "watch_rate", "mean_rating", "satisfaction")
TABLE_FIGURES = ("top_genre_share", "genres_shown", "user_genre_diversity", "intra_list_diversity", "coverage", "exposure_gini",
                 "watch_rate", "mean_rating", "satisfaction", "pages_per_session")  # fmt: skip


def _arm_kind(arm: dict[str, Any]) -> str:
    parts = []
    if arm["explore"]["mmr"]:
        parts.append(f"MMR {arm['explore']['mmr']:g} over top {arm['explore']['pool']}")
    if arm["explore"]["epsilon"]:
        parts.append(f"epsilon {arm['explore']['epsilon']:g}")
    parts.append("frozen (never updated)" if arm["frozen"] else "updated each round")
    return ", ".join(parts)


def format_summary(results: dict[str, Any]) -> str:
    """The terminal table: first -> last round of the headline figures per arm."""
    arms = results["arms"]
    config = results["config"]
    width = max(len(a) for a in arms) + 2
    shown = ("top_genre_share", "genres_shown", "coverage", "exposure_gini", "watch_rate")
    lines = [f"feedback loop on {results['dataset']}: {len(arms)} arms, {config['users']} users, {config['rounds']} rounds, "
             f"{config['user_kind']} users; round 1 -> round {config['rounds']}"]  # fmt: skip
    lines.append("arm".ljust(width) + "".join(m[:16].rjust(19) for m in shown) + "seconds".rjust(9))
    for name, arm in arms.items():
        cells = [f"{fmt(arm['first'][m])}->{fmt(arm['last'][m])}" for m in shown]
        lines.append(name.ljust(width) + "".join(c.rjust(19) for c in cells) + f"{arm['seconds']:9.1f}")
    lines.append("change of the per-user top-genre share, round 1 -> last (95% bootstrap CI over users):")
    for name, arm in arms.items():
        c = arm["change"]["top_genre_share"]
        lines.append(f"  {name.ljust(width)}{fmt(c['change'])}  [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]")
    return "\n".join(lines)


def _curves(results: dict[str, Any], panels: tuple[str, ...]) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, metric in zip(axes.flat, panels):
        for name, arm in results["arms"].items():
            values = [r.get(metric) for r in arm["rounds"]]
            xs = [i + 1 for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            style = ":" if arm["frozen"] else ("--" if arm["explore"]["mmr"] or arm["explore"]["epsilon"] else "-")
            ax.plot(xs, ys, style, marker="o", markersize=3, label=name)
        ax.set_title(LABELS.get(metric, metric), fontsize=10)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return png(figure)


def _change_table(results: dict[str, Any]) -> str:
    header = ["arm", "figure", "round 1", "last round", "change", "95% CI (users)"]
    rows = []
    for name, arm in results["arms"].items():
        for metric in TABLE_FIGURES:
            c = arm["change"].get(metric, {})
            ci = f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]" if c.get("ci_low") is not None else "-"
            rows.append([escape(name), escape(LABELS.get(metric, metric)), fmt(arm["first"].get(metric)), fmt(arm["last"].get(metric)),
                         fmt(c.get("change")), ci])  # fmt: skip
    return table(header, rows)


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Write the self-contained report.html; returns its path."""
    config = results["config"]
    arms = results["arms"]
    setup = table(["arm", "model", "slates", "users round 1", "users last round", "fit s", "loop s"],
                  [[escape(n), escape(a["model"]), escape(_arm_kind(a)), str(a["users_first_round"]), str(a["users_last_round"]),
                    fmt(a.get("fit_seconds")), fmt(a["seconds"])] for n, a in arms.items()], text_columns=(2,))  # fmt: skip
    body = [
        f"<h1>Feedback loop on {escape(results['dataset'])}</h1>",
        f'<p class="note">{config["users"]} users drawn with seed {config["seed"]}, {config["rounds"]} rounds of up to {config["pages"]} pages '
        f"of {config['slate_size']} items, {escape(config['user_kind'])} users; every arm starts from the same fitted model, users and draws. "
        f"After each round (every {config['update_every']}) a model learns from the round's watches, except +frozen arms (the no-loop control). "
        f"Genre figures are per user over everything shown in the round, averaged over the round's active users "
        f"({results['n_genres']} genres); users who see more pages see more genres, so read them beside pages per session. "
        "The random recommender, where present, is the cheap baseline: the diversity a recommender can reach without taste.</p>",
        "<h2>Arms</h2>", setup,
        "<h2>Filter bubble over rounds</h2>",
        '<p class="note">Solid: updated on its own logs; dashed: with exploration; dotted: frozen. A filter bubble shows as a rising '
        "top-genre share and falling genres and diversity.</p>",
        _curves(results, BUBBLE_PANELS),
        "<h2>Exposure and engagement over rounds</h2>", _curves(results, EXPOSURE_PANELS),
        "<h2>First and last round</h2>",
        '<p class="note">Change = last round minus round 1; the 95% interval resamples each round\'s active users (per-user figures only).</p>',
        _change_table(results),
    ]  # fmt: skip
    if results.get("llm_total"):
        total = results["llm_total"]
        rows = [[escape(n), fmt(a["llm"].get("calls")), fmt(a["llm"].get("cache_hits")), fmt(a["llm"].get("fallbacks"))] for n, a in arms.items()]
        body += ["<h2>LLM usage</h2>", table(["arm", "calls", "cache hits", "fallbacks"], rows),
                 f'<p class="note">Total: {escape(str({k: v for k, v in total.items() if isinstance(v, (int, float))}))}</p>']  # fmt: skip
    path = Path(path)
    return write_text_atomically(path, page(f"Feedback loop on {results['dataset']}", "\n".join(body)))
