"""What a person reads after `recarena prompt-opt`: a terminal summary and a self-contained ``report.html``.

The page: the verdict; validation score against LLM requests for every method (one line per seed);
the test table with 95% intervals; the initial and final prompts side by side with a word diff;
every candidate of the first seed with why it was accepted or rejected; the online check; LLM use.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from recarena.simulator.atomic import write_text_atomically

from recarena.scenarios.html_blocks import escape, fmt, page, png, pyplot, table

_ONLINE_METRICS = ("watch_rate", "mean_rating", "pages", "satisfaction")


def _ci(low: Any, high: Any) -> str:
    return "-" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def _effect(effect: dict[str, Any] | None) -> str:
    if not effect:
        return "-"
    return f"{effect['effect']:+.3f} {_ci(effect['ci_low'], effect['ci_high'])}"


def format_summary(results: dict[str, Any]) -> str:
    """The terminal table: per method validation and test figures, spend, then the verdict."""
    comparison = results["comparison"]
    width = max(len(m) for m in comparison) + 2
    lines = [f"prompt optimisation on {results['dataset']}: budget {results['budget']['calls'] or '-'} requests"
             f"{' / ' + str(results['budget']['tokens']) + ' tokens' if results['budget']['tokens'] else ''} per method and seed, "
             f"{len(results['seeds'])} seed(s)", ""]  # fmt: skip
    lines.append("method".ljust(width) + "valid".rjust(8) + "test".rjust(8) + "95% CI".rjust(18) + "vs best-of-n".rjust(26)
                 + "requests".rjust(10) + "optimiser".rjust(10) + "rejected".rjust(10))  # fmt: skip
    for m, c in comparison.items():
        lines.append(m.ljust(width) + fmt(c["valid_best"]).rjust(8) + fmt(c["test_mean"]).rjust(8) + _ci(c["ci_low"], c["ci_high"]).rjust(18)
                     + _effect(c.get("vs_best-of-n")).rjust(26) + f"{c['requests']:.0f}".rjust(10)
                     + f"{c['optimiser_requests']:.0f}".rjust(10) + f"{c['rejected']:.0f}".rjust(10))  # fmt: skip
    lines += ["", *results["verdict"]]
    online = results.get("online") or {}
    if online.get("skipped"):
        lines.append(f"online check skipped: {online['skipped']}")
    elif online:
        for c in online["comparisons"]:
            if c["metric"] in _ONLINE_METRICS:
                lines.append(f"online ({online.get('method', '?')}) {c['metric']}: final - initial {c['effect']:+.3f} {_ci(c['ci_low'], c['ci_high'])}, p Holm {fmt(c['p_holm'])}")
    return "\n".join(lines)


def _curve_plot(results: dict[str, Any]) -> str:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, method in enumerate(results["methods"]):
        for k, seed in enumerate(results["seeds"]):
            curve = seed["methods"][method]["curve"]
            if curve:
                xs, ys = zip(*curve)
                axis.step(xs, ys, where="post", color=colours[index % len(colours)], alpha=1.0 if k == 0 else 0.5,
                          label=method if k == 0 else None, marker="o", markersize=3)  # fmt: skip
    axis.set_xlabel("LLM requests spent (ranker + optimiser)")
    axis.set_ylabel("best validation NDCG@10 so far")
    axis.legend()
    axis.grid(alpha=0.3)
    return png(figure)


def _word_diff(old: str, new: str) -> tuple[str, str]:
    a, b = old.split(" "), new.split(" ")
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old_words, new_words = escape(" ".join(a[i1:i2])), escape(" ".join(b[j1:j2]))
        if op == "equal":
            left.append(old_words)
            right.append(new_words)
        else:
            if old_words:
                left.append(f'<del style="background:#fdd">{old_words}</del>')
            if new_words:
                right.append(f'<ins style="background:#dfd">{new_words}</ins>')
    style = "white-space: pre-wrap; font-family: monospace; font-size: 12px"
    return (f'<div style="{style}">' + " ".join(left) + "</div>", f'<div style="{style}">' + " ".join(right) + "</div>")


def _test_table(results: dict[str, Any]) -> str:
    quality, spend = [], []
    for m, c in results["comparison"].items():
        quality.append([escape(m), fmt(c["valid_initial"]), fmt(c["valid_best"]), fmt(c["test_mean"]), _ci(c["ci_low"], c["ci_high"]),
                        _ci(c["seed_ci_low"], c["seed_ci_high"]), _effect(c.get("vs_initial")), _effect(c.get("vs_best-of-n"))])  # fmt: skip
        spend.append([escape(m), f"{c['changed_seeds']}/{c['seeds']}", f"{c['ranker_requests']:.0f}", f"{c['optimiser_requests']:.0f}",
                      f"{c['tokens']:.0f}", fmt(c["cost_usd"]), f"{c['candidates']:.1f}", f"{c['rejected']:.1f}",
                      str(c["test_misses"]), escape(", ".join(c["stopped"]))])  # fmt: skip
    first = table(["method", "valid initial", "valid chosen", "test NDCG@10", "95% CI (cases)", "95% CI (seeds)",
                   "vs initial [95% CI]", "vs best-of-N [95% CI]"], quality)  # fmt: skip
    second = table(["method", "prompt changed (seeds)", "ranker requests", "optimiser requests", "tokens", "USD", "candidates",
                    "rejected", "test misses", "stopped by"], spend)  # fmt: skip
    note = ('<p class="note">Means over seeds of what each method spent under the same budget. A miss is an answer that named '
            "no candidate (scored by the benchmark's seeded random order).</p>")
    return first + note + second


def _candidates_table(seed: dict[str, Any], method: str) -> str:
    rows = []
    for c in seed["methods"][method]["candidates"]:
        bandit = c["extra"].get("bandit") or {}
        rows.append([c["prompt_id"], escape(c["origin"]), escape(c["parent"] or "-"), "yes" if c["accepted"] else "no",
                     escape(c["reason"] or "-"), fmt(c["valid_mean"]), str(c["requests_at"] if c["valid_scores"] else "-"),
                     str(bandit.get("pulls", "-")), fmt(bandit.get("mean_reward"))])  # fmt: skip
    return table(["id", "origin", "parent", "accepted", "why not", "valid NDCG@10", "at request", "bandit pulls", "mean reward"],
                 rows, text_columns=(1, 4))


def _online_section(online: dict[str, Any]) -> str:
    if not online or online.get("skipped"):
        return f'<p class="note">Skipped: {escape((online or {}).get("skipped", "not run"))}.</p>'
    rows = [[escape(c["metric"]), fmt(c["effect"]), _ci(c["ci_low"], c["ci_high"]), fmt(c["p_value"]), fmt(c["p_holm"]),
             "better" if c["p_holm"] is not None and c["p_holm"] < online["alpha"] and c["effect"] > 0 else
             "worse" if c["p_holm"] is not None and c["p_holm"] < online["alpha"] else "no clear difference"]
            for c in online["comparisons"]]  # fmt: skip
    note = (f'<p class="note">{online["users"]} statistical simulated users met both rerankers (paired twins, '
            f'{online["pages"]} pages of 10); both rerank the top items of <b>{escape(online["base"])}</b>; '
            f'{escape(online["control"])} uses the initial prompt, {escape(online["treatment"])} the final one of '
            f'<b>{escape(online.get("method", "the first method"))}</b>. '
            "Effects are final minus initial with 95% bootstrap intervals; p-values Holm-adjusted.</p>")  # fmt: skip
    return note + table(["metric", "effect", "95% CI", "p", "p Holm", "verdict"], rows)


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Write the self-contained report page to `path`."""
    first = results["seeds"][0]
    primary = results["methods"][0]
    final = first["methods"][primary]["best"]["text"]
    left, right = _word_diff(results["initial_prompt"], final)
    usage = [[escape(m), f"{s['methods'][m]['cost']['requests']}", f"{s['methods'][m]['cost_by_role'].get('ranker', {}).get('requests', 0)}",
              f"{s['methods'][m]['cost_by_role'].get('optimiser', {}).get('requests', 0)}",
              f"{s['methods'][m]['cost']['prompt_tokens'] + s['methods'][m]['cost']['completion_tokens']}",
              f"{s['methods'][m]['cost']['failures']}", str(s["seed"]), str(s["methods"][m]["resumed_units"])]
             for s in results["seeds"] for m in results["methods"]]  # fmt: skip
    body = [
        f"<h1>Prompt optimisation of the LLM reranker on {escape(results['dataset'])}</h1>",
        f'<p class="note">Every method starts from the same prompt and may spend at most {results["budget"]["calls"] or "unlimited"} LLM '
        "requests (ranker and optimiser together, cache hits counted) per seed. Scores are NDCG@10 of the held-out item "
        "among the candidates. Optimisers learn on training users, choose on validation users and are judged on test users "
        "they never saw.</p>",
        "<h2>Verdict</h2><ul>" + "".join(f"<li>{escape(line)}</li>" for line in results["verdict"]) + "</ul>",
        "<h2>Validation score against LLM requests</h2>", _curve_plot(results),
        "<h2>Test results</h2>", _test_table(results),
        f"<h2>Initial and final prompt ({escape(primary)}, seed {first['seed']})</h2>",
        table(["initial", f"final ({escape(first['methods'][primary]['best']['prompt_id'])})"], [[left, right]], text_columns=(0, 1)),
        f"<h2>Candidates of {escape(primary)} (seed {first['seed']})</h2>", _candidates_table(first, primary),
        "<h2>Online check: simulated A/B test of the final against the initial prompt</h2>", _online_section(results.get("online")),
        "<h2>LLM usage</h2>",
        table(["method", "requests", "ranker", "optimiser", "tokens", "failed", "seed", "units read from the log"], usage),
    ]  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, page(f"prompt-opt {results['dataset']}", "\n".join(body)))
