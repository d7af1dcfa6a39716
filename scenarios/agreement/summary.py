"""How far the simulator was checked, for the A/B report: a summary of an agreement run's results.

`recarena ab` looks for an agreement run (``recarena agreement``) in ``OUT/agreement`` or the
folder ``--agreement`` names, and puts its figures at the top of the A/B report; without one, the
report says that the simulator's agreement with reality was not checked on this data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recarena.scenarios.html_blocks import escape, fmt


def agreement_summary(folder: Path, dataset: str, user_model: str) -> dict[str, Any] | None:
    """The figures of the agreement run in `folder` for `user_model` users (None when there is none).

    A run on another dataset, or one that did not run `user_model` users, is summarised with a note
    saying so, rather than passed off as a check of this A/B test's simulator."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
        models = results["user_models"]
    except (ValueError, KeyError):
        return {"path": str(path), "note": "not an agreement run's results (unreadable)"}
    caveats = []
    if results.get("dataset") != dataset:
        caveats.append(f"it checked dataset {results.get('dataset')!r}, not {dataset!r}")
    figures = models.get(user_model)
    if figures is None:
        caveats.append(f"it ran {', '.join(models)} users, not {user_model}")
        figures = next(iter(models.values()))
    rank, pairs = figures["rank"], figures["concordance"]
    return {
        "path": str(path), "split": results.get("split", {}).get("strategy"), "arms": rank["real_order"][::-1],
        "spearman": rank["spearman"], "spearman_ci": rank["spearman_ci"], "kendall": rank["kendall"],
        "clear_pairs": pairs["clear_pairs"], "agree": pairs["agree"], "disagree": pairs["disagree"], "undecided": pairs["undecided"],
        "best_agrees": figures["best_agrees"], "users": len(results.get("users", [])), "note": "; ".join(caveats),
    }  # fmt: skip


def summary_html(summary: dict[str, Any] | None) -> str:
    """The A/B report's paragraph on how far the simulator was checked."""
    if summary is None:
        return ("<p class='note'><b>Not checked against reality here.</b> No agreement run was found for this run directory: "
                "run <code>recarena agreement --out OUT/agreement</code> on this dataset to see whether simulated A/B verdicts "
                "order recommenders as real held-out behaviour does.</p>")  # fmt: skip
    if "spearman" not in summary:
        return f"<p class='note'><b>Agreement check</b> at {escape(summary['path'])}: {escape(summary['note'])}.</p>"
    ci = summary["spearman_ci"]
    note = f" <b>Caveat:</b> {escape(summary['note'])}." if summary["note"] else ""
    return (f"<p class='note'><b>How far this simulator was checked</b> ({escape(summary['path'])}, {escape(str(summary['split']))} split, "
            f"{summary['users']} simulated users, arms {escape(', '.join(summary['arms']))}): the simulated order agrees with real "
            f"held-out NDCG with Spearman {fmt(summary['spearman'], 2)} (95% interval {fmt(ci[0], 2)} to {fmt(ci[1], 2)}); of "
            f"{summary['clear_pairs']} pairs with a clear real difference, {summary['agree']} agree, {summary['disagree']} disagree and "
            f"{summary['undecided']} are undecided; the best arm {'agrees' if summary['best_agrees'] else 'differs'}.{note}</p>")
