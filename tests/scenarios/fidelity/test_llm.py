"""`recarena fidelity` with LLM and hybrid users on the real embedded SmolLM2 (tiny: two users, one ratio)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recarena.scenarios.fidelity.scenario import FidelityScenarioConfig, run_fidelity

pytestmark = pytest.mark.requires("llama_cpp")


def test_llm_and_hybrid_users_on_the_embedded_model_stand_beside_the_statistical_user(small_synthetic, tmp_path):
    config = FidelityScenarioConfig(user_kinds=["statistical", "llm", "hybrid"], llm=["embedded"], llm_cache=tmp_path / "cache.sqlite",
                                    llm_threads=1, users=4, llm_users=2, ratios=[1], max_positives=2, max_ratings=2, calibration_users=2,
                                    tuned_threshold=False, sessions=1, pages=2, slate_size=3, persona_users=1, persona_samples=2,
                                    bootstrap=100, progress=False, html=False, out=tmp_path / "run")  # fmt: skip
    results = run_fidelity(config, dataset=small_synthetic)
    labels = [e["label"] for e in results["evaluations"]]
    assert labels == ["statistical", "statistical (2 users)", "llm (embedded)", "hybrid (embedded)"]
    by_label = {e["label"]: e for e in results["evaluations"]}
    for label in ("llm (embedded)", "hybrid (embedded)", "statistical (2 users)"):
        figures = by_label[label]["discrimination"]["1:1"]
        assert by_label[label]["n_users"] == 2 and 0.0 <= figures["simulated"]["f1"] <= 1.0
        # Same users, same pages: the popularity-threshold user scores the same beside every kind.
        assert figures["popularity_threshold"] == by_label["statistical (2 users)"]["discrimination"]["1:1"]["popularity_threshold"]
        assert by_label[label]["behaviour"]["pages"]["sessions"] == 2
    persona = results["persona"]["embedded"]
    assert persona["users"] == 1 and 0.0 <= persona["self_consistency"] <= 1.0 and persona["chance_rate"] == pytest.approx(1 / 3 * 5 / 6 + 1 / 36)
    assert results["blends"]["embedded"]["fitted_on"]["users"] == 2
    assert results["run"]["llm_usage"]["embedded"]["calls"] > 0
    from recarena.scenarios.fidelity.scenario import FidelityScenario

    summary = FidelityScenario().summary({**results, "results_file": str(Path(results["results_file"]))})
    assert "hybrid (embedded) beats statistical (2 users) on" in summary and "persona self-consistency (embedded)" in summary
