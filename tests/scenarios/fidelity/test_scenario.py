"""`recarena fidelity` behind the scenario contract, its report, its one-line errors and its leakage guarantee.

Most runs use a small synthetic dataset (300 users, 120 items) written as RecBole files, so the
users' kit fits in a second; the command on real ml-100k is in test_fidelity_cli.py."""

from __future__ import annotations

import dataclasses
import json
import re
import zlib

import numpy as np
import pytest

from recarena.agents.llm import Backend, LLMConfig, RawCompletion, RawScore, make_llm
from recarena.scenarios.checker import check_report_renders, check_scenario, check_validation_names_field
from recarena.scenarios.contract import ScenarioError
from recarena.scenarios.fidelity.scenario import FidelityScenario, FidelityScenarioConfig, build_world, run_fidelity
from recarena.scenarios.registry import SCENARIOS
from recarena.simulator.data.splits import random_holdout

TINY = dict(users=40, ratios=[1, 3], max_positives=3, bootstrap=200, sessions=1, pages=3, slate_size=5, progress=False)


@pytest.fixture(scope="module")
def synthetic_folder(small_synthetic, tmp_path_factory):
    from recarena.simulator.data.formats import write_atomic

    folder = tmp_path_factory.mktemp("synthetic-data")
    write_atomic(small_synthetic, folder, name="synthetic")
    return folder


@pytest.fixture(scope="module")
def checked(synthetic_folder, tmp_path_factory):
    config = FidelityScenarioConfig(dataset=str(synthetic_folder), user_kinds=["statistical"], out=tmp_path_factory.mktemp("fid") / "run", **TINY)
    return check_scenario(SCENARIOS["fidelity"], config), config


def test_the_scenario_passes_the_contract_and_is_registered(checked):
    _, config = checked
    assert isinstance(SCENARIOS["fidelity"], FidelityScenario)
    on_disk = json.loads((config.out / "results.json").read_text())
    assert [e["label"] for e in on_disk["evaluations"]] == ["statistical"]


def test_the_table_holds_every_ratio_both_variants_and_the_baselines(checked):
    results, _ = checked
    evaluation = results["evaluations"][0]
    for key in ("discrimination", "discrimination_liked"):
        assert set(evaluation[key]) == {"1:1", "1:3"}
        for ratio, figures in evaluation[key].items():
            for contender in ("simulated", "random_coin", "random_same_rate", "popularity_threshold", "popularity_same_count", "simulated_tuned_threshold"):
                assert 0.0 <= figures[contender]["f1"] <= 1.0
            low, high = figures["simulated"]["f1_ci95"]
            assert low <= figures["simulated"]["f1"] <= high
            # 1:r really is r negatives per positive, unless a user has too few never-touched items (counted).
            if figures["users_short_of_negatives"] == 0:
                assert figures["positive_share"] == pytest.approx(1 / (1 + int(ratio.split(":")[1])))
            else:
                assert figures["positive_share"] > 1 / (1 + int(ratio.split(":")[1]))
    rating = evaluation["rating"]
    assert {"simulated", "item_mean", "biased_mf", "global_mean"} <= set(rating)
    assert sum(rating["histograms"]["real"]) == sum(rating["histograms"]["simulated"]) == rating["ratings"]
    tiers = evaluation["behaviour"]["pages"]["by_tier"]
    assert set(tiers) == {"low", "medium", "high"} and sum(t["users"] for t in tiers.values()) == 40


def test_every_measure_names_a_winner_that_holds_the_best_value(checked):
    results, _ = checked
    measures = {w["measure"] for w in results["winners"]}
    assert {"F1 interacted 1:1", "F1 liked 1:3", "RMSE", "W1 rating distribution", "genre JS per user"} <= measures
    for w in results["winners"]:
        assert w["best_baseline"] is not None and w["best_simulated"] is not None
        best = max if w["better"] == "higher" else min
        assert w["value"] == best(w["best_simulated_value"], w["best_baseline_value"])
        assert w["simulated_wins"] == (w["winner"] == w["best_simulated"])
    text = SCENARIOS["fidelity"].summary(results)
    assert "popularity-threshold user" in text and "winner" in text


def test_report_has_the_tables_and_both_rating_histograms(checked):
    _, config = checked
    page = (config.out / "report.html").read_text()
    for heading in ("Summary", "Fidelity table, 40 users", "Plots", "Behaviour shape", "Details per user kind"):
        assert f"<h2>{heading}" in page, heading
    assert "popularity-threshold user" in page and "random user (coin)" in page and "biased MF" in page
    assert len(re.findall(r'<img alt="plot" src="data:image/png;base64,', page)) == 3
    assert "http://" not in page and "https://" not in page


def test_report_renders_in_headless_chromium(checked, tmp_path, require):
    require("chromium")
    _, config = checked
    rendered = check_report_renders(config.out / "report.html", screenshot=tmp_path / "report.png", min_images=3)
    assert rendered["images"] == 3


@pytest.mark.parametrize(
    "field, bad, needle",
    [("recommender", "bpx", "unknown recommender 'bpx'"), ("ratios", [1, 0], "1:0 is impossible"), ("ratios", [], "at least one"),
     ("user_kinds", ["statistical", "robot"], "unknown kind 'robot'"), ("llm", ["gpt"], "unknown backend 'gpt'"),
     ("llm_users", 500, "at most users"), ("liked_rating", 7.0, "1-5 scale"), ("test_fraction", 0.0, "in (0, 1)")],
)
def test_bad_settings_are_one_line_errors_naming_the_field(field, bad, needle):
    others = {"user_kinds": ["statistical", "hybrid"]} if field != "user_kinds" else {}
    message = check_validation_names_field(FidelityScenarioConfig, field, bad, **others)
    assert needle in message


def test_hybrid_users_without_validation_data_are_refused():
    message = check_validation_names_field(FidelityScenarioConfig, "valid_fraction", 0.0, user_kinds=["hybrid"])
    assert "calibrated on validation" in message


def test_a_dataset_without_ratings_cannot_check_rating_alignment(small_synthetic, tmp_path):
    implicit = dataclasses.replace(small_synthetic, has_ratings=False)
    config = FidelityScenarioConfig(user_kinds=["statistical"], out=tmp_path, **TINY)
    with pytest.raises(ScenarioError, match=r"^rating_alignment: dataset .* has no ratings"):
        run_fidelity(config, dataset=implicit)
    with pytest.raises(ScenarioError, match=r"^ratios: 1:200 is impossible"):
        run_fidelity(dataclasses.replace(config, ratios=[1, 200]), dataset=small_synthetic)


class RecordingBackend(Backend):
    """Answers from a hash of the prompt (deterministic, prompt-dependent) and keeps every prompt it saw."""

    name = "recording"

    def __init__(self):
        self.prompts: list[str] = []

    def identity(self) -> dict[str, str]:
        return {"backend": self.name, "model": "recording-1"}

    def complete(self, request, timeout_s):
        self.prompts.append(json.dumps(request.messages))
        return RawCompletion("{}")

    def score_options(self, request, timeout_s):
        text = json.dumps(request.messages)
        self.prompts.append(text)
        seed = zlib.crc32(text.encode())
        return RawScore({o: -1.0 - ((seed >> k) % 7) / 3 for k, o in enumerate(request.options)}, "logprobs")


def _with_test_ratings_flipped(dataset, seed: int = 0):
    """The same data with every held-out (test) rating r replaced by 6 - r; the split is unchanged."""
    split = random_holdout(dataset, valid_fraction=0.1, test_fraction=0.1, seed=seed)
    key = ["user", "item", "timestamp"]
    frame = dataset.interactions.copy()
    in_test = frame[key].merge(split.test[key].assign(_test=True), on=key, how="left")["_test"].fillna(False).to_numpy(bool)
    frame.loc[in_test, "rating"] = 6 - frame.loc[in_test, "rating"]
    return dataset.with_interactions(frame), split


def test_no_held_out_rating_or_interaction_reaches_a_prompt_or_a_preference_model(small_synthetic, tmp_path):
    flipped, split = _with_test_ratings_flipped(small_synthetic)
    assert random_holdout(flipped, 0.1, 0.1, seed=0).test[["user", "item"]].equals(split.test[["user", "item"]])
    config = FidelityScenarioConfig(user_kinds=["statistical", "hybrid"], llm_users=6, calibration_users=6,
                                    persona_users=2, html=False, **{**TINY, "users": 12})  # fmt: skip
    runs, worlds = {}, {}
    for name, data in (("real", small_synthetic), ("flipped", flipped)):
        backend = RecordingBackend()
        worlds[name] = build_world(config, dataset=data, llms={"recording": make_llm(backend, LLMConfig(progress=False))})
        runs[name] = (run_fidelity(dataclasses.replace(config, out=tmp_path / name), world=worlds[name]), backend.prompts)
    (real, real_prompts), (flipped_results, flipped_prompts) = runs["real"], runs["flipped"]
    # Every prompt the simulated users (and the persona) saw is the same, whatever the held-out ratings are
    # (sessions send a page's calls together, so compare them in order of content) ...
    assert real_prompts and sorted(real_prompts) == sorted(flipped_prompts)
    # ... and so is every user's judgement of the held-out items: the AUC on interactions does not move ...
    for a, b in zip(real["evaluations"], flipped_results["evaluations"]):
        assert a["discrimination"]["1:1"]["simulated"]["auc"] == b["discrimination"]["1:1"]["simulated"]["auc"]
        # ... while the checks really read the held-out ratings (the test can fail).
        assert a["rating"]["simulated"]["rmse"] != b["rating"]["simulated"]["rmse"]
    # The preference model, the item statistics and the rating predictors come from the training part only.
    a, b = worlds["real"], worlds["flipped"]
    for field in ("rating_item_bias", "rating_user_factors", "watch_item_bias", "thresholds"):
        assert np.array_equal(getattr(a.kit.preferences, field), getattr(b.kit.preferences, field)), field
    assert np.array_equal(a.reference.item_mean, b.reference.item_mean) and a.reference.popularity_thresholds == b.reference.popularity_thresholds
    assert np.array_equal(a.reference.biased_mf.item_bias, b.reference.biased_mf.item_bias)
    held_out = split.test.groupby("user")["item"].apply(set)
    assert all(not (a.kit.preferences.seen[u] & items) for u, items in held_out.items())
    assert a.kit.history.n_interactions == len(split.train)
    # Every profile a prompt carried is one the train-only kit wrote (the persona prompts aside).
    from recarena.agents.prompts import template

    profiles = {template("system").render(profile=p.describe(), memories="") for p in a.kit.profiles}
    systems = [json.loads(p)[0]["content"] for p in real_prompts]
    user_systems = [s for s in systems if not s.startswith("You analyse movie viewers")]
    assert user_systems and set(user_systems) <= profiles
