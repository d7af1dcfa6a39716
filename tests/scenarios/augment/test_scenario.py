"""`recarena augment` on a tiny dataset: the scenario contract, the statistics, the report, the synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recarena.recommenders import build_recommender
from recarena.recommenders.evaluation import evaluate
from recarena.recommenders.offline import history_scorer
from recarena.scenarios.augment import data as ad
from recarena.scenarios.augment.scenario import AugmentConfig, AugmentScenario
from recarena.scenarios.checker import (
    check_report_renders,
    check_scenario,
    check_validation_names_field,
)
from recarena.scenarios.registry import SCENARIOS
from recarena.simulator.data import load_dataset
from recarena.simulator.data.formats import read_atomic, write_atomic
from recarena.simulator.data.splits import leave_one_out
from recarena.simulator.data.synthetic import SyntheticConfig, generate_synthetic

TINY_PARAMS = ["bpr.epochs=2", "bpr.dim=8", "sasrec.epochs=1", "sasrec.dim=8", "sasrec.heads=1", "sasrec.inner_dim=8",
               "sasrec.negatives=16", "sasrec.max_len=8"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """A small synthetic dataset written as RecBole atomic files (so the scenario loads it like any folder)."""
    data = generate_synthetic(SyntheticConfig(n_users=60, n_items=80, mean_interactions=15, seed=3))
    folder = tmp_path_factory.mktemp("tiny-atomic")
    write_atomic(data, folder, "tiny")
    return folder


def tiny_config(folder: Path, out: Path, **overrides) -> AugmentConfig:
    values = dict(dataset=str(folder), recommenders="bpr,sasrec", model_params=TINY_PARAMS, regimes="sparse,full", sparse_min=3,
                  sparse_max=6, seeds=2, sessions=1, pages=3, slate_size=5, bootstrap=200, preference_epochs=10, out=out,
                  baselines="popularity,random,shown",
                  progress=False)  # fmt: skip
    return AugmentConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def tiny_run(tiny_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("augment") / "run"
    config = tiny_config(tiny_folder, out)
    results = check_scenario(SCENARIOS["augment"], config)  # also reruns it: same seed, same results
    return config, results


def test_registered_under_its_name():
    assert isinstance(SCENARIOS["augment"], AugmentScenario)


def test_results_compare_every_variant_on_the_same_test_users(tiny_run):
    config, results = tiny_run
    assert set(results["regimes"]) == {"sparse", "full"}
    for regime, block in results["regimes"].items():
        for volume in block["volumes"]:
            assert volume["simulated"] > 0, f"{regime}: the simulated users watched nothing"
            assert volume["simulated"] == volume["popularity"] == volume["random"] == volume["shown"]  # equal volume
        assert block["volumes"][0]["train"] > 0
        for name in ("bpr", "sasrec"):
            model = block["models"][name]
            assert set(model["variants"]) == {"real", "simulated", "popularity", "random", "shown"}
            for variant in model["variants"].values():
                assert len(variant["ndcg@10"]["per_seed"]) == config.seeds
                assert 0.0 <= variant["ndcg@10"]["mean"] <= variant["recall@10"]["mean"] <= 1.0
            pairs = {(c["variant"], c["baseline"], c["metric"]) for c in model["comparisons"]}
            assert ("simulated", "real", "ndcg@10") in pairs and ("simulated", "popularity", "recall@10") in pairs
            assert ("shown", "real", "ndcg@10") in pairs and ("simulated", "shown", "ndcg@10") in pairs
            for c in model["comparisons"]:
                assert c["ci_low"] <= c["effect"] <= c["ci_high"]
                assert c["seed_ci_low"] is not None and c["seed_ci_low"] <= c["seed_ci_high"]
                assert c["verdict"] in ("gain", "loss", "no clear difference")
    sparse, full = results["regimes"]["sparse"]["volumes"][0], results["regimes"]["full"]["volumes"][0]
    assert sparse["train"] < full["train"]


def test_sparse_users_keep_their_first_interactions_only(tiny_folder):
    split = leave_one_out(load_dataset(str(tiny_folder)))
    cut = ad.sparsify(split.train, 3, 6, np.random.default_rng(0))
    sizes = cut.groupby("user").size()
    assert sizes.min() >= min(3, split.train.groupby("user").size().min()) and sizes.max() <= 6
    for user, frame in cut.groupby("user"):
        real = split.train[split.train["user"] == user].sort_values("timestamp", kind="stable")
        assert frame["timestamp"].max() <= real["timestamp"].iloc[len(frame) - 1]


def test_summary_and_report(tiny_run):
    _, results = tiny_run
    text = AugmentScenario().summary(results)
    assert "sparse training" in text and "simulated vs real" in text and "report:" in text
    html = Path(results["report"]).read_text()
    assert "sparse regime" in html and "full regime" in html and html.count("<img") >= 4


def test_report_renders_in_headless_chromium(tiny_run, require):
    require("chromium")
    _, results = tiny_run
    assert check_report_renders(results["report"], min_images=4)["images"] >= 4


def test_synthetic_data_carries_its_provenance_in_parquet_and_atomic_files(tiny_run, tiny_folder):
    _, results = tiny_run
    files = results["run"]["synthetic_files"]["sparse"]
    frame = pd.read_parquet(files["parquet"])
    assert set(frame[ad.PROVENANCE]) == {"real", "simulated", "popularity", "random", "shown"}
    counts = frame[ad.PROVENANCE].value_counts()
    assert counts["simulated"] == counts["popularity"] == counts["random"] == counts["shown"] == results["regimes"]["sparse"]["volumes"][0]["simulated"]
    back = read_atomic(Path(files["simulated"]).parent)
    assert back.n_interactions == counts["real"] + counts["simulated"]
    header = Path(files["simulated"]).read_text().splitlines()[0].split("\t")
    assert header[-1] == "source:token"
    sources = [line.split("\t")[-1] for line in Path(files["simulated"]).read_text().splitlines()[1:]]
    assert set(sources) == {"real", "simulated"}
    # Synthetic pairs are new to their user: none repeats a training interaction.
    real = frame[frame[ad.PROVENANCE] == "real"]
    had = set(zip(real["user"], real["item"]))
    for source in ("simulated", "popularity", "random", "shown"):
        rows = frame[frame[ad.PROVENANCE] == source]
        assert not (set(zip(rows["user"], rows["item"])) & had)
        assert not rows.duplicated(["user", "item"]).any()


def test_inter_file_round_trips_through_the_atomic_reader(tiny_folder, tmp_path):
    data = load_dataset(str(tiny_folder))
    frame = data.interactions.copy()
    frame[ad.PROVENANCE] = np.where(np.arange(len(frame)) % 3 == 0, "simulated", "real")
    write_atomic(data, tmp_path, "copy", interactions=frame, extra_columns=(ad.PROVENANCE,))
    back = read_atomic(tmp_path)
    columns = ["user", "item", "rating", "timestamp"]
    pd.testing.assert_frame_equal(back.interactions[columns], data.interactions[columns])
    assert back.users["raw_id"].tolist() == data.users["raw_id"].tolist()
    assert back.items["text"].tolist() == data.items["text"].tolist()
    table = pd.read_csv(tmp_path / "copy.inter", sep="\t", dtype=str)
    assert table["source:token"].tolist() == frame[ad.PROVENANCE].tolist()


def test_held_out_items_never_reach_the_users_or_the_generators(tiny_folder, tmp_path, monkeypatch):
    """Every dataset the users' kit, the page source and the naive generators see is real training data only."""
    import recarena.agents.kit as kit_module
    from recarena.recommenders.base import Recommender

    split = leave_one_out(load_dataset(str(tiny_folder)))
    held_out = pd.concat([split.valid, split.test])
    held = set(zip(held_out["user"], held_out["item"], held_out["timestamp"]))
    seen: list[tuple[str, pd.DataFrame]] = []
    build_kit, fit, naive = kit_module.build_user_kit, Recommender.fit, ad.naive_interactions

    def spy_kit(history, **kwargs):
        seen.append(("kit", history.interactions))
        return build_kit(history, **kwargs)

    def spy_fit(self, dataset, valid=None):
        if valid is None:  # the page source: fitted without validation
            seen.append((f"browse {self.name}", dataset.interactions))
        return fit(self, dataset, valid)

    def spy_naive(kind, counts, train, rng):
        seen.append((kind, train.interactions))
        return naive(kind, counts, train, rng)

    monkeypatch.setattr(kit_module, "build_user_kit", spy_kit)
    monkeypatch.setattr(Recommender, "fit", spy_fit)
    monkeypatch.setattr(ad, "naive_interactions", spy_naive)
    config = tiny_config(tiny_folder, tmp_path / "run", recommenders="bpr", model_params=TINY_PARAMS[:2], seeds=1,
                         html=False, export=False, browse="itemknn")
    AugmentScenario().run(config)
    assert {what for what, _ in seen} >= {"kit", "browse itemknn", "popularity", "random"}
    train_rows = set(zip(split.train["user"], split.train["item"], split.train["timestamp"]))
    for what, frame in seen:
        rows = set(zip(frame["user"], frame["item"], frame["timestamp"]))
        assert not rows & held, f"{what} saw held-out interactions"
        assert rows <= train_rows, f"{what} saw interactions outside the training part"


def test_synthetic_rows_sit_after_training_and_before_validation(tiny_folder):
    data = load_dataset(str(tiny_folder))
    split = leave_one_out(data)
    train = data.with_interactions(split.train)
    counts = pd.Series(3, index=np.arange(data.n_users))
    synthetic = ad.naive_interactions(ad.POPULARITY, counts, train, np.random.default_rng(0))
    augmented = ad.augmented_split(split, split.train, synthetic)
    last_train = split.train.groupby("user")["timestamp"].max()
    assert (synthetic["timestamp"].to_numpy() == last_train.reindex(synthetic["user"]).to_numpy()).all()
    known = augmented.known_before("test")
    valid_item = split.valid.set_index("user")["item"]
    for user, frame in known.groupby("user", sort=False):
        if user not in valid_item.index:
            continue
        items = frame["item"].tolist()
        assert items[-1] == valid_item[user], "a sequential model must read the validation item last"
        mine = synthetic[synthetic["user"] == user]["item"].tolist()
        assert items[-1 - len(mine) : -1] == mine, "synthetic items come right after the real training history"


def test_per_user_metrics_match_the_offline_evaluator(tiny_folder):
    data = load_dataset(str(tiny_folder))
    split = leave_one_out(data)
    model = build_recommender("bpr", {"epochs": 2, "dim": 8, "progress": False}).fit(split.train_dataset())
    per_user = ad.per_user_metrics(model, split, "test", 10)
    reference = evaluate(history_scorer(model, split, "test"), split, "test", (10,))
    assert len(per_user) == reference.n_users
    assert per_user["ndcg@10"].mean() == pytest.approx(reference["ndcg@10"], abs=1e-6)
    assert per_user["recall@10"].mean() == pytest.approx(reference["recall@10"], abs=1e-6)


@pytest.mark.parametrize("field, bad", [("recommenders", "bpr,nope"), ("recommenders", ""), ("browse", "nope"), ("ratio", 0.0),
                                        ("ratio", 50.0), ("regimes", "sparse,dense"), ("sparse_max", 2), ("seeds", 0),
                                        ("model_params", ["bpr.nope=1"]), ("pages", 0), ("level", 1.5),
                                        ("baselines", "popularity,volume")])  # fmt: skip
def test_bad_settings_are_one_line_errors_naming_the_field(field, bad):
    check_validation_names_field(AugmentConfig, field, bad)


def test_hybrid_users_calibrate_on_training_interactions_only(tiny_folder, tmp_path, monkeypatch, require):
    """Hybrid users with the real embedded LLM: their blend is fitted on the last two *training* interactions."""
    require("llama_cpp")
    import recarena.agents.calibration as calibration

    split = leave_one_out(load_dataset(str(tiny_folder)))
    train_rows = set(zip(split.train["user"], split.train["item"], split.train["timestamp"]))
    held_out_seen = []
    calibrate = calibration.calibrate_blend

    def spy(kit, held_out, llm, **kwargs):
        held_out_seen.append(held_out)
        assert not set(zip(kit.history.interactions["user"], kit.history.interactions["item"])) & set(zip(held_out["user"], held_out["item"]))
        return calibrate(kit, held_out, llm, **kwargs)

    monkeypatch.setattr(calibration, "calibrate_blend", spy)
    config = tiny_config(tiny_folder, tmp_path / "run", user_kind="hybrid", recommenders="bpr", model_params=TINY_PARAMS[:2],
                         regimes="sparse", seeds=1, users=3, calibration_users=2, pages=1, llm_cache=tmp_path / "cache.sqlite",
                         html=False, export=False)  # fmt: skip
    results = AugmentScenario().run(config)
    assert len(held_out_seen) == 1
    assert set(zip(held_out_seen[0]["user"], held_out_seen[0]["item"], held_out_seen[0]["timestamp"])) <= train_rows
    volume = results["regimes"]["sparse"]["volumes"][0]
    assert volume["simulated_users"] <= 3 and volume["simulated"] == volume["popularity"]
