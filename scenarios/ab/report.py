"""What a person reads after an A/B test: a terminal summary and a self-contained ``report.html``.

The page holds a summary table, the effects against the control with their 95% intervals,
exit-depth survival curves, simulated versus real rating distributions, genre exposure per
arm, interview quotes, off-policy estimates beside the simulated truth, and LLM usage and
cost. Plots are matplotlib PNGs embedded as base64, so the file opens anywhere offline.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from recarena.agents.llm.text import NO_USABLE_ANSWER, shown_text
from recarena.scenarios.ab.metrics import LABELS, LOWER_IS_BETTER, POPULATION_METRICS, USER_METRICS
from recarena.scenarios.agreement.summary import summary_html
from recarena.scenarios.html_blocks import STYLE as _STYLE
from recarena.scenarios.html_blocks import fmt as _fmt
from recarena.scenarios.html_blocks import png as _png
from recarena.scenarios.html_blocks import table as _table


_BANNER_STYLE = ".banner { background: #fff3cd; border: 1px solid #e0b000; padding: 0.6em 1em; max-width: 900px; }"


def _power(value: Any) -> str:
    return "never (no effect)" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{int(value):,}"


def _verdict(c: dict[str, Any], alpha: float) -> str:
    p = c.get("p_holm")
    if p is None:
        return "untestable"
    if p < alpha:  # by the metric's direction: a lower exposure Gini is better
        return "better" if (c["effect"] > 0) != (c["metric"] in LOWER_IS_BETTER) else "worse"
    return "no clear difference"


def _metric_label(c: dict[str, Any], design: str) -> str:
    """The metric's name; the mean rating's also says how many users it compares (only users who rated count)."""
    label = LABELS.get(c["metric"], c["metric"])
    if c["metric"] != "mean_rating" or c.get("n_arm") is None:
        return label
    if design == "paired":
        return f"{label} ({c['n_arm']} users rated in both arms)"
    return f"{label} ({c['n_control']} and {c['n_arm']} users rated)"


def _ope_caveat(ope: dict[str, Any], tolerance: float = 0.5) -> str | None:
    """A warning when an off-policy estimate lands far (relatively) from the simulated truth it estimates."""
    far = []
    for arm, o in (ope.get("arms") or {}).items():
        truth = o.get("truth")
        if truth is None or not math.isfinite(truth):
            continue
        for name in ("ips", "snips", "dr"):
            value = o.get(name)
            if value is not None and math.isfinite(value) and abs(value - truth) > tolerance * max(abs(truth), 0.01):
                far.append(f"{arm} {name.upper()}")
    if not far:
        return None
    return (f"Caveat: {', '.join(far)} miss the simulated truth by more than {tolerance:.0%}; with this little support these "
            f"estimates are not to be trusted.")


def llm_fallback_note(results: dict[str, Any]) -> str | None:
    """One sentence on the LLM's fallbacks per arm when there were any (None otherwise)."""
    health = results.get("llm_health") or {}
    if not health.get("fallbacks"):
        return None
    per_arm = ", ".join(f"{arm} {a['fallbacks']} of {a['requests']} ({(a['fallback_rate'] or 0):.0%})"
                        for arm, a in health["by_arm"].items())
    return (f"LLM fallbacks: {health['fallbacks']} of {health['requests']} LLM requests failed and were replaced by a "
            f"default answer ({per_arm}); those decisions are guesses, not the model's")


def _unusable_texts(results: dict[str, Any]) -> int:
    return sum(int((a.get("llm") or {}).get("unusable_texts", 0)) for a in results["arms"].values())


def quote_lines(results: dict[str, Any], per_arm: int = 1) -> list[str]:
    """The terminal's "what users said": a quote per arm, a fragment shown as "no usable answer", and the count of fragments."""
    quotes = results.get("quotes") or []
    if not quotes:
        return []
    shown = [(q, shown_text(q.get("liked")), shown_text(q.get("missed"))) for q in quotes]
    silent = sum(liked == missed == NO_USABLE_ANSWER for _, liked, missed in shown)
    lines = [f"\nwhat users said ({silent} of {len(quotes)} interviews in words gave {NO_USABLE_ANSWER}; "
             f"{_unusable_texts(results)} LLM texts were fragments):"]  # fmt: skip
    width = max(len(str(q["arm"])) for q in quotes) + 2
    for arm in dict.fromkeys(q["arm"] for q in quotes):
        for q, liked, missed in [row for row in shown if row[0]["arm"] == arm][:per_arm]:
            lines.append(f"{str(arm).ljust(width)}user {q['user']}: liked: {liked[:80]} | missed: {missed[:80]}")
    return lines


def format_summary(results: dict[str, Any]) -> str:
    """The terminal table: per-arm figures, then effects against the control."""
    arms = results["arms"]
    metrics = list(USER_METRICS) + list(POPULATION_METRICS)
    width = max(len(a) for a in arms) + 2
    lines = [f"A/B test on {results['dataset']}: {len(arms)} arms, design {results['design']}, control {results['control']}"]
    lines.append("arm".ljust(width) + "users".rjust(6) + "".join(m[:12].rjust(13) for m in metrics) + "llm calls".rjust(11))
    for name, a in arms.items():
        lines.append(name.ljust(width) + str(a["users"]).rjust(6) + "".join(_fmt(a.get(m)).rjust(13) for m in metrics)
                     + str(int(a.get("llm", {}).get("calls", 0))).rjust(11))  # fmt: skip
    fallbacks = llm_fallback_note(results)
    if fallbacks:
        lines.append("warning: " + fallbacks)
    for name, a in arms.items():  # a served arm (docs/service.md): how its service answered
        if a.get("service"):
            s, latency = a["service"], a["service"].get("latency_ms") or {}
            lines.append(f"{name} served by {s['url']}: {s['calls']} calls, {s['failures']} failed, {s['retries']} retries; latency "
                         f"p50 {_fmt(latency.get('p50'))} ms, p95 {_fmt(latency.get('p95'))} ms")  # fmt: skip
    alpha = results["config"]["alpha"]
    lines.append(f"\neffects against {results['control']} (95% bootstrap CI; p after Holm over {len(results['comparisons'])} tests):")
    lines.append("arm".ljust(width) + "metric".ljust(17) + "effect".rjust(10) + "95% CI".rjust(22) + "p".rjust(10) + "p Holm".rjust(10)
                 + "  users for 80% power".ljust(22) + "  verdict")  # fmt: skip
    for c in results["comparisons"]:
        ci = f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
        power = _power(c.get("users_for_power")) if c["metric"] in USER_METRICS else "-"
        lines.append(c["arm"].ljust(width) + c["metric"].ljust(17) + _fmt(c["effect"]).rjust(10) + ci.rjust(22)
                     + _fmt(c["p_value"]).rjust(10) + _fmt(c["p_holm"]).rjust(10) + ("  " + power).ljust(22) + "  " + _verdict(c, alpha))  # fmt: skip
    ope = results.get("ope") or {}
    if ope.get("arms"):
        lines.append(f"\noff-policy estimates of first-page watch rate from {results['control']}'s logs ({ope.get('policy', '')}):")
        lines.append("arm".ljust(width) + "simulated".rjust(11) + "naive".rjust(9) + "IPS".rjust(9) + "SNIPS".rjust(9) + "DR".rjust(9) + "support".rjust(9))
        for name, o in ope["arms"].items():
            lines.append(name.ljust(width) + "".join(_fmt(o.get(k)).rjust(w) for k, w in
                         (("truth", 11), ("naive", 9), ("ips", 9), ("snips", 9), ("dr", 9), ("support", 9))))  # fmt: skip
        caveat = _ope_caveat(ope)
        if caveat:
            lines.append(caveat)
    lines += quote_lines(results)
    if "agreement" in results:
        checked = results["agreement"]
        lines.append("\nchecked against reality: " + ("no agreement run here (recarena agreement --out OUT/agreement)" if checked is None else
                     f"Spearman {_fmt(checked.get('spearman'))} between simulated and real orders, {checked.get('agree')} of "
                     f"{checked.get('clear_pairs')} clear pairs agree ({checked['path']})" if "spearman" in checked else checked["note"]))  # fmt: skip
    return "\n".join(lines)


def _versions(versions: Any) -> str:
    """``{"python": "3.12", "numpy": "2.1"}`` as ``python 3.12, numpy 2.1`` (a footer, not a Python dict)."""
    if isinstance(versions, dict):
        return ", ".join(f"{name} {version}" for name, version in versions.items()) or "unknown"
    return str(versions) if versions else "unknown"


def format_aa(result: dict[str, Any]) -> str:
    lines = [f"A/A self-check: {result['arm']} against itself, {result['runs']} runs of {result['users']} users, "
             f"{result['design']} design, {result['test']} test, alpha {result['alpha']}"]  # fmt: skip
    for metric, rate in result["false_positive_rate"].items():
        sd = math.sqrt(result["alpha"] * (1 - result["alpha"]) / result["runs"])
        lines.append(f"  {metric:<14} false-positive rate {rate:.3f}  (expected {result['alpha']:.3f} +- {1.96 * sd:.3f})")
    return "\n".join(lines)


# ---------------------------------------------------------------------- plots
def _plots(results: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = results["arms"]
    names = list(arms)
    plots = {}
    # Effects with intervals, one panel per metric.
    comparisons = results["comparisons"]
    metrics = list(dict.fromkeys(c["metric"] for c in comparisons))
    if metrics:
        # Two rows of panels at most four wide: readable at 1280 px without shrinking the text.
        columns = min(len(metrics), 4)
        rows_of_panels = math.ceil(len(metrics) / columns)
        fig, axes = plt.subplots(rows_of_panels, columns, figsize=(3.2 * columns, 0.6 + (1.0 + 0.45 * len(names)) * rows_of_panels),
                                 squeeze=False)  # fmt: skip
        for ax in axes.flat[len(metrics):]:
            ax.set_visible(False)
        for ax, metric in zip(axes.flat, metrics):
            rows = [c for c in comparisons if c["metric"] == metric]
            for y, c in enumerate(rows):
                low, high = c["ci_low"], c["ci_high"]
                verdict = _verdict(c, results["config"]["alpha"])
                colour = {"better": "tab:green", "worse": "tab:red"}.get(verdict, "tab:grey")
                if low is not None and high is not None:
                    ax.plot([low, high], [y, y], color=colour, lw=2)
                ax.plot([c["effect"]], [y], "o", color=colour)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(range(len(rows)), [c["arm"] for c in rows])
            ax.set_title(LABELS.get(metric, metric) + (" (lower is better)" if metric in LOWER_IS_BETTER else ""), fontsize=11)
            ax.tick_params(labelsize=10)
        fig.suptitle(f"effect against {results['control']} (95% bootstrap interval)", fontsize=12)
        fig.tight_layout()
        plots["effects"] = _png(fig)
    # Exit-depth survival.
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name in names:
        curve = arms[name]["exit_depth_survival"]
        # A step per page, drawn to the page's right edge: one page is a visible line too, not a lone point.
        ax.step(range(1, len(curve) + 2), list(curve) + list(curve[-1:]), where="post", label=name, marker="o", markevery=range(len(curve)))
    pages = max((len(arms[n]["exit_depth_survival"]) for n in names), default=1)
    ax.set_xticks(range(1, pages + 1))
    ax.set_xlim(0.8, pages + 1)
    ax.set_xlabel("page")
    ax.set_ylabel("sessions still there")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    plots["survival"] = _png(fig)
    # Ratings: simulated per arm vs real.
    fig, ax = plt.subplots(figsize=(4.5, 3))
    levels = np.arange(1, 6)
    series = {"real (these users)": results["real_ratings"]} | {n: arms[n]["ratings"] for n in names}
    width = 0.8 / len(series)
    for k, (name, counts) in enumerate(series.items()):
        values = np.array([counts.get(str(level), 0) for level in levels], float)
        ax.bar(levels + (k - (len(series) - 1) / 2) * width, values / max(values.sum(), 1), width, label=name)
    ax.set_xlabel("rating")
    ax.set_ylabel("share")
    ax.legend(fontsize=7)
    plots["ratings"] = _png(fig)
    # Genre exposure.
    genres = list(next(iter(arms.values()))["genre_exposure"])
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        shares = [arms[name]["genre_exposure"][g] for g in genres]
        ax.bar(np.arange(len(genres)) + (k - (len(names) - 1) / 2) * width, shares, width, label=name)
    ax.set_xticks(range(len(genres)), genres, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of impressions")
    ax.legend(fontsize=8)
    plots["genres"] = _png(fig)
    return plots


# ---------------------------------------------------------------------- page
def render_html(results: dict[str, Any]) -> str:
    arms, alpha = results["arms"], results["config"]["alpha"]
    plots = _plots(results)
    esc = html.escape
    metrics = list(USER_METRICS) + list(POPULATION_METRICS)
    summary = _table(["arm", "model", "users"] + [LABELS[m] for m in metrics],
                     [[esc(n), esc(a["model"]), str(a["users"])] + [_fmt(a.get(m)) for m in metrics] for n, a in arms.items()])  # fmt: skip
    effect_rows = []
    for c in results["comparisons"]:
        verdict = _verdict(c, alpha)
        cls = "better" if verdict == "better" else "worse" if verdict == "worse" else ""
        effect_rows.append([esc(c["arm"]), esc(_metric_label(c, results["design"])), _fmt(c["control_value"]), _fmt(c["arm_value"]),
                            _fmt(c["effect"]), f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]", esc(c["test"]), _fmt(c["p_value"]),
                            _fmt(c["p_holm"]), _power(c.get("users_for_power")) if c["metric"] in USER_METRICS else "-",
                            f'<span class="{cls}">{esc(verdict)}</span>'])  # fmt: skip
    effects = _table(["arm", "metric", results["control"], "arm value", "effect", "95% CI", "test", "p", "p (Holm)",
                      "users for 80% power", "verdict"], effect_rows)  # fmt: skip
    # A missing answer or a fragment ("The (1991)") is never shown as if a user had said it.
    quotes = [[esc(q["arm"]), str(q["user"]), _fmt(q.get("satisfaction")), esc(shown_text(q.get("liked"))), esc(shown_text(q.get("missed")))]
              for q in results.get("quotes", [])[:30]]  # fmt: skip
    usage_rows = []
    for n, a in arms.items():
        u = a.get("llm") or {}
        usage_rows.append([esc(n), str(int(u.get("calls", 0))), str(int(u.get("cache_hits", 0))), str(int(u.get("prompt_tokens", 0))),
                           str(int(u.get("completion_tokens", 0))), str(int(u.get("fallbacks", 0))), str(int(u.get("unusable_texts", 0))),
                           _fmt(u.get("wall_s", 0.0), 1),
                           f"${u.get('cost_usd', 0.0):.4f}", _fmt(u.get("seconds", 0.0), 1)])  # fmt: skip
    ope = results.get("ope") or {}
    ope_html = ""
    if ope.get("arms"):
        ope_html = "<h2>Off-policy estimates beside the simulated truth</h2>" + f'<p class="note">{esc(ope.get("policy", ""))}</p>' + _table(
            ["arm", "simulated truth", "naive (control's rate)", "IPS", "SNIPS", "DR", "support", "matched slots"],
            [[esc(n)] + [_fmt(o.get(k)) for k in ("truth", "naive", "ips", "snips", "dr", "support")] + [str(o.get("matches", 0))]
             for n, o in ope["arms"].items()])  # fmt: skip
        caveat = _ope_caveat(ope)
        ope_html += f'<p class="banner">{esc(caveat)}</p>' if caveat else ""
    blend = results.get("blend")
    blend_html = ""
    if blend:
        effect = blend.get("fitted_on", {}).get("watch_effect", {})
        blend_html = (f'<p class="note">Hybrid users: the LLM moves the watch logit by {_fmt(effect.get("llm"))} against '
                      f'{_fmt(effect.get("preference"))} for the preference model (weight x spread, fitted on held-out items).</p>')  # fmt: skip
    config = results["config"]
    note = llm_fallback_note(results)
    banner = f'<p class="banner">Warning: {esc(note)}.</p>' if note else ""
    checked = summary_html(results["agreement"]) if "agreement" in results else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>recarena A/B test</title><style>{_STYLE}{_BANNER_STYLE}</style></head><body>
<h1>Simulated A/B test on {esc(results['dataset'])}</h1>
{banner}<p class="note">{len(arms)} arms, control <b>{esc(results['control'])}</b>, {esc(results['design'])} design, {esc(config['user_kind'])} users
({esc(config.get('user_model', 'static'))} interest),
up to {config['pages']} pages of {config['slate_size']} items, seed {config['seed']}. Each user is the unit: figures are means over users;
coverage and Gini are over all impressions of the arm. Verdicts use p after Holm's correction at alpha {alpha}.</p>
{checked}
<h2>Summary</h2>{summary}
<h2>Effects against the control</h2>{effects}{plots.get('effects', '')}
<p class="note">"users for 80% power": how many simulated users (per arm for a split design) the t-test needs to detect the observed
effect at alpha {alpha}; when it exceeds the users simulated, a "no clear difference" may just be too few users.</p>
<h2>Exit depth</h2>{plots['survival']}
<h2>Ratings: simulated against real</h2>{plots['ratings']}
<h2>Genre exposure per arm</h2>{plots['genres']}
<h2>What users said</h2>{_table(['arm', 'user', 'satisfaction', 'liked', 'missed'], quotes, (3, 4)) if quotes else '<p>No interviews in words.</p>'}
{ope_html}
<h2>LLM usage and cost</h2>{_table(['arm', 'calls', 'cache hits', 'prompt tokens', 'completion tokens', 'fallbacks', 'unusable texts', 'LLM wall s', 'cost', 'arm wall s'], usage_rows)}
<p class="note">"unusable texts": reasons and interview answers that came back as fragments (a title, one word, a stutter); they
show as "{NO_USABLE_ANSWER}" and, unlike fallbacks, leave the decisions behind the figures untouched.</p>
{blend_html}
<p class="note">Run directory {esc(str(results.get('run', {}).get('directory', '')))}; versions: {esc(_versions(results.get('run', {}).get('versions')))}.</p>
</body></html>"""


def write_report(results: dict[str, Any], impressions: Any, sessions: Any, world: Any, path: str | Path) -> Path:
    """Render `results` to `path` (the frames and world are for future panels; the results hold what is drawn)."""
    path = Path(path)
    path.write_text(render_html(results), encoding="utf-8")
    return path
