"""The fidelity scenario's verdicts (the winner of every measure), its terminal summary and its report.html.

Contenders are compared only within a group of evaluations on the same users (same pages,
same held-out ratings): the statistical user on all `users`, and on the `llm_users` subset
beside the LLM kinds. Baselines measured on the same pages share one row per group;
baselines matched to one simulated user (its sessions' shown items) carry its label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recarena.simulator.atomic import write_text_atomically

from recarena.scenarios.html_blocks import escape, fmt, page, png, pyplot, table

HIGHER, LOWER = "higher", "lower"


def persona_chance_rate(samples: int) -> float:
    """Self-consistency of a random answerer (every trait kept only when all `samples` answers agree):
    five traits with three levels and a motive with six options."""
    return (5 * (1 / 3) ** (samples - 1) + (1 / 6) ** (samples - 1)) / 6


def _taste_measures(evaluation: dict[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """(measure, direction, {contender: value}) for taste discrimination."""
    label, out = evaluation["label"], []
    for key, variant in (("discrimination", evaluation.get("positives", "interacted")), ("discrimination_liked", "liked")):
        for ratio, figures in evaluation.get(key, {}).items():
            values = {label: figures["simulated"]["f1"], "random user (coin)": figures["random_coin"]["f1"],
                      "popularity-threshold user": figures["popularity_threshold"]["f1"]}  # fmt: skip
            if "simulated_tuned_threshold" in figures:
                values[f"{label}, own threshold tuned on validation"] = figures["simulated_tuned_threshold"]["f1"]
            out.append((f"F1 {variant} {ratio}", HIGHER, values))
            if ratio == "1:1":
                out.append((f"AUC {variant} 1:1", HIGHER, {label: figures["simulated"]["auc"], "popularity (training count)": figures["popularity_same_count"]["auc"]}))
    return out


def measures(evaluation: dict[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """Every measure of one evaluation with its contenders (the simulated user and the baselines)."""
    label, out = evaluation["label"], _taste_measures(evaluation)
    rating = evaluation.get("rating")
    if rating:
        for metric in ("rmse", "mae"):
            out.append((metric.upper(), LOWER, {label: rating["simulated"][metric], "item mean": rating["item_mean"][metric],
                                                **({"biased MF": rating["biased_mf"][metric]} if "biased_mf" in rating else {}),
                                                "global mean": rating["global_mean"][metric]}))  # fmt: skip
        w = rating["wasserstein"]
        out.append(("W1 rating distribution", LOWER, {label: w["simulated"], "item mean (rounded)": w["item_mean_rounded"],
                                                      **({"biased MF (rounded)": w["biased_mf_rounded"]} if "biased_mf_rounded" in w else {}),
                                                      "training histogram": w["training_histogram"]}))  # fmt: skip
    shape = evaluation.get("behaviour")
    if shape:
        js = shape["genres"]["js_per_user"]
        if js["simulated"] is not None:
            out.append(("genre JS per user", LOWER, {label: js["simulated"], f"random watcher on {label}'s pages": js["random_same_count"],
                                                     f"popularity threshold on {label}'s pages": js["popularity_threshold"]}))  # fmt: skip
        rho = shape["pages"]["spearman_pages_vs_real"]
        if rho["simulated"] is not None:
            out.append(("Spearman pages/session vs real", HIGHER, {label: rho["simulated"], f"tier-blind leaver like {label}": rho["tier_blind"]}))
    return out


def groups(results: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Evaluations by their number of users (the users of one size are the same users)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for evaluation in results["evaluations"]:
        out.setdefault(evaluation["n_users"], []).append(evaluation)
    return out


def group_table(evaluations: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, float]]]:
    """measure -> (direction, {contender: value}) merged over a group's evaluations."""
    merged: dict[str, tuple[str, dict[str, float]]] = {}
    for evaluation in evaluations:
        for measure, direction, values in measures(evaluation):
            merged.setdefault(measure, (direction, {}))[1].update({k: v for k, v in values.items() if v is not None})
    return merged


def winners(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The best contender of every measure in every group, the best simulated user, and whether it beats the baselines."""
    simulated = {e["label"] for e in results["evaluations"]}
    out = []
    for n_users, evaluations in groups(results).items():
        for measure, (direction, values) in group_table(evaluations).items():
            if not values:
                continue
            pick = max if direction == HIGHER else min
            best = pick(values, key=values.get)
            ours = {k: v for k, v in values.items() if any(k.startswith(s) for s in simulated)}
            best_ours = pick(ours, key=ours.get) if ours else None
            bars = {k: v for k, v in values.items() if k not in ours}
            best_bar = pick(bars, key=bars.get) if bars else None
            out.append({"users": n_users, "measure": measure, "better": direction, "winner": best, "value": values[best],
                        "best_simulated": best_ours, "best_simulated_value": ours.get(best_ours),
                        "best_baseline": best_bar, "best_baseline_value": bars.get(best_bar), "simulated_values": ours,
                        "simulated_wins": best in ours})  # fmt: skip
    return out


def llm_verdicts(results: dict[str, Any]) -> list[str]:
    """For each LLM kind: on how many measures it beats the statistical user on the same users."""
    lines = []
    for n_users, evaluations in groups(results).items():
        statistical = next((e for e in evaluations if e["kind"] == "statistical"), None)
        if statistical is None:
            continue
        base = {m: (d, v[statistical["label"]]) for m, d, v in measures(statistical)}
        for evaluation in evaluations:
            if evaluation["kind"] == "statistical":
                continue
            theirs = {m: v[evaluation["label"]] for m, _, v in measures(evaluation)}
            compared = [m for m in theirs if m in base and theirs[m] is not None and base[m][1] is not None]
            better = [m for m in compared if (theirs[m] > base[m][1]) == (base[m][0] == HIGHER) and theirs[m] != base[m][1]]
            verdict = "the LLM helps" if len(better) > len(compared) / 2 else "the LLM does not help"
            if n_users < 30:
                verdict += f" (only {n_users} users: not conclusive, see the intervals)"
            lines.append(f"{evaluation['label']} beats {statistical['label']} on {len(better)} of {len(compared)} measures "
                         f"({n_users} users): {verdict}" + (f" (better on: {', '.join(better)})" if better else ""))  # fmt: skip
    return lines


def format_summary(results: dict[str, Any]) -> str:
    lines = [f"fidelity on {results['dataset']} (split {results['split']})"]
    for n_users, evaluations in groups(results).items():
        lines.append(f"-- {n_users} users: " + ", ".join(e["label"] for e in evaluations))
        for w in results["winners"]:
            if w["users"] == n_users:
                others = [f"{k} {fmt(v)}" for k, v in w["simulated_values"].items() if k != w["best_simulated"]]
                lines.append(f"   {w['measure']:<31} winner {w['winner']} ({fmt(w['value'])}); best simulated {w['best_simulated']} "
                             f"({fmt(w['best_simulated_value'])}) vs best baseline {w['best_baseline']} ({fmt(w['best_baseline_value'])})"
                             + (f"; also {', '.join(others)}" if others else ""))  # fmt: skip
    for backend, persona in results.get("persona", {}).items():
        lines.append(f"persona self-consistency ({backend}): {fmt(persona['self_consistency'])} (random answers: {fmt(persona['chance_rate'])})")
    lines += llm_verdicts(results)
    return "\n".join(lines)


# ---------------------------------------------------------------------- report.html
def _contender_table(merged: dict[str, tuple[str, dict[str, float]]], columns: list[str], short: dict[str, str]) -> str:
    columns = [c for c in columns if c in merged]
    if not columns:
        return ""
    names = list(dict.fromkeys(name for c in columns for name in merged[c][1]))
    best = {c: (max if merged[c][0] == HIGHER else min)(merged[c][1].values()) for c in columns}
    rows = []
    for name in names:
        cells = [escape(name)]
        for c in columns:
            value = merged[c][1].get(name)
            mark = ' class="better"' if value is not None and value == best[c] else ""
            cells.append(f"<span{mark}>{fmt(value)}</span>")
        rows.append(cells)
    return table(["contender", *[short.get(c, c) for c in columns]], rows, text_columns=(0,))


def _plots(results: dict[str, Any]) -> str:
    plt = pyplot()
    evaluations = results["evaluations"]
    parts = []
    rated = [e for e in evaluations if e.get("rating")]
    if rated:
        fig, ax = plt.subplots(figsize=(9, 3.6))
        series = {"real (held out)": rated[0]["rating"]["histograms"]["real"]}
        series.update({e["label"]: e["rating"]["histograms"]["simulated"] for e in rated})
        series["training histogram"] = rated[0]["rating"]["histograms"]["training_histogram"]
        width = 0.8 / len(series)
        for k, (name, counts) in enumerate(series.items()):
            total = max(1, sum(counts))
            ax.bar([level + (k - len(series) / 2) * width + width / 2 for level in range(1, 6)], [c / total for c in counts], width, label=name)
        ax.set(xlabel="rating", ylabel="share", title="Held-out ratings: real and simulated")
        ax.legend(fontsize=7)
        parts.append(png(fig))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for e in evaluations:
        table_ = e["discrimination"]
        ratios = [int(r.split(":")[1]) for r in table_]
        line = ax.plot(ratios, [table_[r]["simulated"]["f1"] for r in table_], marker="o", label=e["label"])[0]
        if all("simulated_tuned_threshold" in table_[r] for r in table_):
            ax.plot(ratios, [table_[r]["simulated_tuned_threshold"]["f1"] for r in table_], "-.", marker="^", color=line.get_color(),
                    label=f"{e['label']}, own threshold tuned on validation")  # fmt: skip
    first = evaluations[0]["discrimination"]
    ratios = [int(r.split(":")[1]) for r in first]
    ax.plot(ratios, [first[r]["popularity_threshold"]["f1"] for r in first], "k--", marker="s", label=f"popularity threshold ({evaluations[0]['n_users']} users)")
    ax.plot(ratios, [first[r]["random_coin"]["f1"] for r in first], ":", color="grey", label="random (coin)")
    ax.set(xlabel="negatives per positive (r)", ylabel="F1", xscale="log", title="Taste discrimination (interacted)")
    ax.set_xticks(ratios, [f"1:{r}" for r in ratios])
    ax.legend(fontsize=7)
    parts.append(png(fig))
    shaped = [e for e in evaluations if e.get("behaviour")]
    if shaped:
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"wspace": 0.5})
        tiers = list(shaped[0]["behaviour"]["pages"]["by_tier"])
        width = 0.8 / (len(shaped) + 1)
        for k, e in enumerate(shaped):
            by_tier = e["behaviour"]["pages"]["by_tier"]
            left.bar([t + k * width for t in range(len(tiers))], [by_tier[t]["pages_per_session"] or 0 for t in tiers], width, label=f"{e['label']}: pages")
        real = shaped[0]["behaviour"]["pages"]["by_tier"]
        # Real sessions have no pages: their ratings per session go on their own axis; the shapes are compared.
        twin = left.twinx()
        twin.bar([t + len(shaped) * width for t in range(len(tiers))], [real[t]["real_interactions_per_session"] or 0 for t in tiers], width,
                 label="real: ratings per session (right axis)", color="black")  # fmt: skip
        twin.set_ylabel("real ratings per session")
        left.set_xticks([t + 0.4 for t in range(len(tiers))], tiers)
        left.set(xlabel="activity tier", ylabel="simulated pages per session", title="Per session, by activity tier")
        handles = left.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels()
        left.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper left")
        genres = shaped[0]["behaviour"]["genres"]
        names = genres["genres"]
        right.plot(range(len(names)), genres["mix"]["real_held_out"], "k-", marker="o", label="real (held out)")
        for e in shaped:
            right.plot(range(len(names)), e["behaviour"]["genres"]["mix"]["simulated"], marker=".", label=e["label"])
        right.plot(range(len(names)), genres["mix"]["random_same_count"], ":", color="grey", label="random watcher")
        right.set_xticks(range(len(names)), names, rotation=70, fontsize=7)
        right.set(ylabel="share of watches", title="Genre mix")
        right.legend(fontsize=7)
        parts.append(png(fig))
    return "\n".join(parts)


def _detail(evaluation: dict[str, Any]) -> str:
    rows = []
    for key, variant in (("discrimination", "interacted"), ("discrimination_liked", "liked")):
        for ratio, figures in evaluation.get(key, {}).items():
            for name in ("simulated", "simulated_tuned_threshold", "random_same_rate", "random_coin", "popularity_same_count", "popularity_threshold"):
                if name in figures:
                    f = figures[name]
                    ci = f.get("f1_ci95")
                    rows.append([f"{variant} {ratio}", escape(name.replace("_", " ")), fmt(f["accuracy"]), fmt(f["precision"]), fmt(f["recall"]),
                                 fmt(f["f1"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")])  # fmt: skip
    return table(["page", "decider", "accuracy", "precision", "recall", "F1 [95% CI]"], rows, text_columns=(1,))


def write_report(results: dict[str, Any], path: Path) -> Path:
    """A self-contained report.html: fidelity tables with winners, plots, behaviour, persona, details."""
    body = [f"<h1>Fidelity of simulated users on {escape(results['dataset'])}</h1>",
            (f'<p class="note">Split {escape(str(results["split"]))}; popularity threshold {escape(results["threshold_source"])}. '
             "Users and all item statistics come from the training part; thresholds, the biased MF's L2 and hybrid blends from validation; "
             "every figure from the held-out test part. Best value of each column in bold green.</p>")]  # fmt: skip
    body.append("<h2>Summary</h2>")
    body.append(table(["users", "measure", "winner", "value", "best simulated", "value", "best baseline", "value"],
                      [[str(w["users"]), escape(w["measure"]), escape(w["winner"]), fmt(w["value"]), escape(str(w["best_simulated"])),
                        fmt(w["best_simulated_value"]), escape(str(w["best_baseline"])), fmt(w["best_baseline_value"])] for w in results["winners"]],
                      text_columns=(1, 2, 4, 6)))  # fmt: skip
    verdicts = "".join(f"<li>{escape(v)}</li>" for v in llm_verdicts({**results}))
    if verdicts:
        body.append(f"<ul>{verdicts}</ul>")
    for n_users, evaluations in groups(results).items():
        merged = group_table(evaluations)
        taste = [m for m in merged if m.startswith(("F1", "AUC"))]
        body.append(f"<h2>Fidelity table, {n_users} users</h2>")
        body.append(_contender_table(merged, [m for m in taste if " interacted " in m], {m: m.replace("F1 interacted ", "F1 ").replace("AUC interacted ", "AUC ") for m in taste}))
        body.append(_contender_table(merged, [m for m in taste if " liked " in m], {m: m.replace("F1 liked ", "liked F1 ").replace("AUC liked ", "liked AUC ") for m in taste}))
        body.append(_contender_table(merged, ["RMSE", "MAE", "W1 rating distribution"], {"W1 rating distribution": "W1"}))
        body.append(_contender_table(merged, ["genre JS per user", "Spearman pages/session vs real"],
                                     {"genre JS per user": "genre JS", "Spearman pages/session vs real": "Spearman pages"}))  # fmt: skip
    body.append("<h2>Plots</h2>")
    body.append(_plots(results))
    shaped = [e for e in results["evaluations"] if e.get("behaviour")]
    if shaped:
        body.append("<h2>Behaviour shape: per session, by activity tier</h2>")
        rows = [[escape(e["label"]), escape(tier), str(v["users"]), fmt(v["pages_per_session"]), fmt(v["watches_per_session"]),
                 fmt(v["tier_blind_pages_per_session"]), fmt(v["real_interactions_per_session"])]
                for e in shaped for tier, v in e["behaviour"]["pages"]["by_tier"].items()]  # fmt: skip
        body.append(table(["user kind", "tier", "users", "pages", "watches", "tier-blind pages", "real ratings"], rows, text_columns=(0,)))
    if results.get("persona"):
        body.append("<h2>Persona self-consistency</h2>")
        body.append(table(["backend", "users", "traits kept", "random answers", "invalid answers"],
                          [[escape(b), str(p["users"]), fmt(p["self_consistency"]), fmt(p["chance_rate"]), str(p["invalid_answers"])]
                           for b, p in results["persona"].items()], text_columns=(0,)))  # fmt: skip
        body.append('<p class="note">Self-consistency is agreement, not validity: a model that always gives the same answer keeps every trait.</p>')
    body.append("<h2>Details per user kind</h2>")
    for evaluation in results["evaluations"]:
        body.append(f"<h3>{escape(evaluation['label'])} ({evaluation['n_users']} users, {fmt(evaluation['seconds'], 1)} s)</h3>")
        body.append(_detail(evaluation))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, page(f"Fidelity: {results['dataset']}", "\n".join(body)))
