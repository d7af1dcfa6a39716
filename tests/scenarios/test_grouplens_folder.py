"""A GroupLens ml-100k folder (u.data, u.item, u.user) runs through `ab`, `fidelity` and `evaluate` like the built-in data.

Its items 267 and 1373 carry only the "unknown" genre, which the reader drops: they have no genres,
which once crashed the users' profiles (np.bincount on a float array) before any session ran."""

from __future__ import annotations

import json

from recarena.scenarios.cli import main
from recarena.simulator.data import load_dataset


def test_the_grouplens_folder_has_items_without_genres(grouplens_ml100k):
    data = load_dataset(grouplens_ml100k)
    assert (data.n_users, data.n_items, data.n_interactions) == (943, 1682, 100_000)
    assert sorted(data.items.loc[data.items["genres"].map(len) == 0, "raw_id"]) == ["1373", "267"]


def test_ab_fidelity_and_evaluate_run_on_a_grouplens_folder(grouplens_ml100k, tmp_path, capsys):
    folder = str(grouplens_ml100k)
    ab = ["ab", "--dataset", folder, "--users", "20", "--pages", "1", "--arms", "pop,random", "--bootstrap", "100",
          "--no-html", "--no-progress", "--out", str(tmp_path / "ab")]  # fmt: skip
    assert main(ab) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "ab" / "results.json").read_text())
    assert len(results["users"]) == 20 and set(results["arms"]) == {"pop", "random"}
    assert results["arms"]["pop"]["impressions"] > 0

    fidelity = ["fidelity", "--dataset", folder, "--users", "20", "--user-kinds", "statistical", "--ratios", "1", "--sessions", "1",
                "--pages", "1", "--persona-users", "0", "--bootstrap", "100", "--no-html", "--no-progress", "--out", str(tmp_path / "fidelity")]  # fmt: skip
    assert main(fidelity) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "fidelity" / "results.json").read_text())["evaluations"][0]["n_users"] == 20

    evaluate = ["evaluate", "--dataset", folder, "--model", "pop", "--no-progress", "--out", str(tmp_path / "evaluate.json")]
    assert main(evaluate) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "evaluate.json").read_text())
    assert report["models"]["pop"]["full"]["ndcg@10"] > report["models"]["random"]["full"]["ndcg@10"]
    assert "Traceback" not in capsys.readouterr().err
