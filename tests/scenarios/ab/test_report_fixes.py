"""The A/B report reads right: verdicts follow each metric's direction, the mean rating says whom it compares,
far-off off-policy estimates carry a caveat, the footer's versions are text, and --help shows single percent signs."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from recarena.scenarios.ab.report import _ope_caveat, _plots, _verdict, render_html
from recarena.scenarios.cli import build_parser


def comparison(metric: str, effect: float, p: float = 0.001, **extra) -> dict:
    return {"metric": metric, "arm": "bpr", "effect": effect, "p_holm": p, "p_value": p, "ci_low": effect - 0.01,
            "ci_high": effect + 0.01, "control_value": 0.5, "arm_value": 0.5 + effect, "test": "paired t", "n_control": 12,
            "n_arm": 12, "users_for_power": 30.0, **extra}  # fmt: skip


@pytest.mark.parametrize("metric, effect, verdict", [("exposure_gini", -0.1, "better"), ("exposure_gini", 0.1, "worse"),
                                                     ("watch_rate", 0.1, "better"), ("watch_rate", -0.1, "worse")])  # fmt: skip
def test_a_verdict_follows_the_metrics_direction(metric, effect, verdict):
    assert _verdict(comparison(metric, effect), 0.05) == verdict
    assert _verdict(comparison(metric, effect, p=0.5), 0.05) == "no clear difference"


def results_with(comparisons: list[dict], pages: int = 1, ope: dict | None = None) -> dict:
    arm = {"model": "pop", "users": 12, "exit_depth_survival": [1.0] * pages, "ratings": {"4": 3}, "genre_exposure": {"Drama": 1.0},
           "llm": {}}  # fmt: skip
    return {"arms": {"pop": arm, "bpr": dict(arm, model="bpr")}, "comparisons": comparisons, "control": "pop", "design": "paired",
            "dataset": "ml-100k", "real_ratings": {"4": 5}, "quotes": [], "ope": ope or {},
            "config": {"alpha": 0.05, "user_kind": "statistical", "pages": pages, "slate_size": 10, "seed": 0},
            "run": {"directory": "runs/ab", "versions": {"recarena": "0.1", "numpy": "2.1.0"}}}  # fmt: skip


def test_the_page_colours_a_lower_gini_better_and_names_the_users_behind_the_mean_rating():
    page = render_html(results_with([comparison("exposure_gini", -0.1), comparison("mean_rating", 0.2)]))
    gini_row = next(row for row in page.split("<tr>") if "exposure Gini</td>" in row)
    assert 'class="better"' in gini_row
    assert "12 users rated in both arms" in page
    assert "versions: recarena 0.1, numpy 2.1.0" in page and "{" not in page.split("versions:")[1].split("</p>")[0]


def test_an_off_policy_estimate_far_from_the_truth_carries_a_caveat():
    near = {"arms": {"bpr": {"truth": 0.30, "ips": 0.31, "snips": 0.29, "dr": 0.30}}}
    far = {"arms": {"bpr": {"truth": 0.30, "ips": 0.90, "snips": 0.29, "dr": 0.30}}}
    assert _ope_caveat(near) is None
    assert "bpr IPS" in _ope_caveat(far) and "Caveat" in render_html(results_with([comparison("watch_rate", 0.1)], ope=far))


def test_the_exit_depth_plot_has_whole_page_ticks_and_a_line_at_one_page():
    from PIL import Image

    plots = _plots(results_with([comparison("watch_rate", 0.1)], pages=1))
    png = base64.b64decode(re.search(r'base64,([A-Za-z0-9+/=]+)', plots["survival"]).group(1))
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    coloured = int(((abs(pixels[..., 0] - pixels[..., 1]) > 60) | (abs(pixels[..., 1] - pixels[..., 2]) > 60)).sum())
    assert coloured > 400  # the arms' lines across the page (the legend's samples alone are fewer)


def test_the_effect_plot_is_wide_enough_to_read_at_1280_pixels():
    from PIL import Image

    metrics = ["watch_rate", "mean_rating", "pages", "satisfaction", "genre_diversity", "novelty", "coverage", "exposure_gini"]
    plots = _plots(results_with([comparison(m, 0.1) for m in metrics]))
    png = base64.b64decode(re.search(r'base64,([A-Za-z0-9+/=]+)', plots["effects"]).group(1))
    width, height = Image.open(io.BytesIO(png)).size
    assert width >= 1000 and height >= 300  # four panels a row, two rows: not eight panels squeezed into one strip


def test_ab_help_shows_single_percent_signs(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ab", "--help"])
    text = capsys.readouterr().out
    assert "80%" in text and "%%" not in text
