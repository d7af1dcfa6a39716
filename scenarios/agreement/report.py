"""The agreement check's ``report.html``: the verdict first, then the scatter, the per-arm table, the pairs and the users' model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recarena.scenarios.html_blocks import escape, fmt, page, png, pyplot, table

MARKERS = {"dynamic": ("o", "tab:blue"), "static": ("s", "tab:orange")}


def _scatter(results: dict[str, Any]) -> str:
    """Real NDCG@k (x) against the simulated metric (y), one panel per user model, each arm labelled."""
    plt = pyplot()
    ndcg, metric = results["real_metric"], results["metric"]
    models = list(results["user_models"])
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False)
    for ax, name in zip(axes[0], models):
        figures = results["user_models"][name]
        marker, colour = MARKERS.get(name, ("o", "tab:green"))
        for arm, real in results["real"].items():
            x, y = real[ndcg], figures["arms"][arm][metric]
            ax.plot([x], [y], marker, color=colour, markersize=8)
            ax.annotate(arm, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=10)
        rank = figures["rank"]
        ax.set_title(f"{name} users: Spearman {fmt(rank['spearman'], 2)}, Kendall {fmt(rank['kendall'], 2)}", fontsize=11)
        ax.set_xlabel(f"real {ndcg} (test part)", fontsize=10)
        ax.set_ylabel(f"simulated {results['metric_label']}", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(fig)


def _verdict(name: str, figures: dict[str, Any]) -> str:
    rank, pairs = figures["rank"], figures["concordance"]
    ci = rank["spearman_ci"]
    best = "the same best arm as reality" if figures["best_agrees"] else (
        f"<b>another best arm</b> ({escape(rank['simulated_order'][-1])}, real: {escape(rank['real_order'][-1])})")  # fmt: skip
    return (f"<p><b>{escape(name)} users</b>: Spearman {fmt(rank['spearman'], 2)} (95% interval {fmt(ci[0], 2)} to {fmt(ci[1], 2)}), "
            f"Kendall {fmt(rank['kendall'], 2)}; of {pairs['clear_pairs']} pairs with a clear real difference the simulation orders "
            f"{pairs['agree']} the same way, {pairs['disagree']} the other way and leaves {pairs['undecided']} undecided (not significant); "
            f"its means order {pairs['same_direction']} of them the real way; {best}.</p>")


def render_html(results: dict[str, Any]) -> str:
    ndcg, metric = results["real_metric"], results["metric"]
    models = list(results["user_models"])
    arms = list(results["real"])
    parts = [f"<h1>Agreement of simulated A/B verdicts with reality: {escape(results['dataset'])}</h1>",
             f"<p class='note'>Split: {escape(str(results['split']))}. Real figure: {ndcg} of each test user, offline. "
             f"Simulated figure: {escape(results['metric_label'])} of {len(results['users'])} simulated users who met every arm "
             f"(paired). Nothing of the test part reached a model or a user.</p>"]  # fmt: skip
    parts += [_verdict(name, results["user_models"][name]) for name in models]
    parts.append(_scatter(results))
    real = results["real"]
    compared, everyone = real[arms[0]]["users"], real[arms[0]].get("all_test_users_count", real[arms[0]]["users"])
    header = ["arm", f"real {ndcg} ({compared} users)"] + ([f"real {ndcg}, all {everyone} test users"] if everyone != compared else []) \
        + [f"{name}: {m}" for name in models for m in ("watch_rate", "watches")]  # fmt: skip
    rows = [[escape(arm), fmt(real[arm][ndcg], 4)] + ([fmt(real[arm]["all_test_users"], 4)] if everyone != compared else [])
            + [fmt(results["user_models"][name]["arms"][arm][m]) for name in models for m in ("watch_rate", "watches")] for arm in arms]  # fmt: skip
    rows.append(["<i>the users' own model</i>", "-"] + (["-"] if everyone != compared else [])
                + [f"{ndcg} {fmt(results['user_models'][n]['own_ndcg'], 4)}" for n in models for _ in (0, 1)])  # fmt: skip
    parts += ["<h2>Per arm</h2>", table(header, rows),
              f"<p class='note'>The real figure is compared on the {compared} test users with a training history, the population the "
              f"simulated users are drawn from (a simulated user starts from its history){'; the test users without one are shown beside, not compared' if everyone != compared else ''}. "
              f"The last row: the simulated users' interest used as a recommender, evaluated like the arms ({ndcg}, on the compared users).</p>"]
    for name in models:
        pairs = results["user_models"][name]["pairs"]
        rows = [[escape(p["better"]), escape(p["other"]), fmt(p["real_relative"], 2), "yes" if p["real_clear"] else "no",
                 fmt(p["simulated_difference"], 3), fmt(p["simulated_p_holm"], 3), escape(p["verdict"])] for p in pairs]  # fmt: skip
        parts += [f"<h2>Pairs, {escape(name)} users</h2>",
                  table(["real better", "other", "real relative gain", "clear", f"simulated difference ({metric})", "p (Holm)", "verdict"], rows)]
    if results.get("dynamics"):
        dyn = results["dynamics"]
        rows = [[escape(v) + (" (chosen)" if v == dyn["chosen"] else ""), fmt(f["log_likelihood"], 3), fmt(f["auc"], 3),
                 escape(", ".join(f"{k} {w:.2f}" for k, w in f["weights"].items()))] for v, f in dyn["variants"].items()]  # fmt: skip
        parts += ["<h2>The users' dynamics</h2>",
                  f"<p class='note'>Variants fitted on the validation part's next items of {dyn['users']} users, each against random "
                  "never-had items; likelihood and AUC out of fold. The variant with the best validation likelihood is chosen; "
                  "the agreement figures above play no part in the choice.</p>",
                  table(["variant", "validation log-likelihood", "validation AUC", "weights"], rows, text_columns=(3,))]  # fmt: skip
    return page(f"recarena agreement: {results['dataset']}", "\n".join(parts))


def write_report(results: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(results), encoding="utf-8")
    return path
