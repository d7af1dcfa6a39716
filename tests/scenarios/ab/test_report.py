"""report.html is self-contained and holds every section the issue asks for."""

from __future__ import annotations

import re

import pytest

from recarena.scenarios.ab.scenario import ABConfig, run_ab
from recarena.scenarios.checker import check_report_renders


@pytest.fixture(scope="module")
def report(ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    results = run_ab(ABConfig(arms="random,pop", users=30, pages=2, bootstrap=200, progress=False, out=out, quotes=2))
    return results, (out / "report.html").read_text()


def test_report_is_self_contained_with_every_section(report):
    results, page = report
    for heading in ("Summary", "Effects against the control", "Exit depth", "Ratings: simulated against real",
                    "Genre exposure per arm", "What users said", "Off-policy estimates", "LLM usage and cost"):
        assert f"<h2>{heading}" in page, heading
    images = re.findall(r'<img alt="plot" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4 and all(len(i) > 1000 for i in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched when opened
    assert page.count("<tr>") >= 1 + len(results["arms"]) + 1 + len(results["comparisons"])


def test_simulated_and_real_rating_histograms_share_their_levels(report):
    results, _ = report
    levels = {"1", "2", "3", "4", "5"}
    assert set(results["real_ratings"]) <= levels
    for arm in results["arms"].values():
        assert arm["ratings"] and set(arm["ratings"]) <= levels  # the plot looks bars up by these keys


def test_report_quotes_the_interviews(report):
    results, page = report
    assert results["quotes"] and results["quotes"][0]["liked"] in page


def test_report_renders_in_headless_chromium_and_no_text_overflows_its_table(report, tmp_path, require):
    import os

    require("chromium")
    _, page = report
    checked = tmp_path / "report.html"
    checked.write_text(page)
    rendered = check_report_renders(checked, screenshot=tmp_path / "report.png", min_images=4)
    assert rendered["screenshot"].stat().st_size > 20_000


def test_a_fragment_is_never_quoted(report):
    from recarena.agents.llm.text import NO_USABLE_ANSWER
    from recarena.scenarios.ab.report import format_summary, render_html

    results, _ = report
    arm = next(iter(results["arms"]))
    fragments = dict(results, quotes=[{"arm": arm, "user": 1, "satisfaction": 4, "liked": "The 2017 movie The Lion King", "missed": "The (1991)"},
                                      {"arm": arm, "user": 2, "satisfaction": 6, "liked": NO_USABLE_ANSWER, "missed": ""},
                                      {"arm": arm, "user": 3, "satisfaction": 8, "liked": "I liked the thrillers.", "missed": "More Drama."}])  # fmt: skip
    page = render_html(fragments)
    quoted = page.split("What users said", 1)[1].split("<h2>", 1)[0]
    assert "Lion King" not in quoted and "(1991)" not in quoted and quoted.count(NO_USABLE_ANSWER) == 4
    assert "I liked the thrillers." in quoted and "More Drama." in quoted
    terminal = format_summary(fragments)
    assert f"2 of 3 interviews in words gave {NO_USABLE_ANSWER}" in terminal and "Lion King" not in terminal
