"""The preference models' disk cache: a stored fit is the fresh fit, found only for the same data, settings and code."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from recarena.agents import preference_cache
from recarena.agents.preference_cache import CACHE_SWITCH, fitted_preferences, preference_key
from recarena.agents.preferences import PreferenceConfig, PreferenceModel, fit_preferences

QUICK = PreferenceConfig(epochs=5, seed=3)


def assert_same_model(a: PreferenceModel, b: PreferenceModel) -> None:
    for field in fields(PreferenceModel):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if field.name == "seen":
            assert left == right
        else:
            np.testing.assert_array_equal(np.asarray(left), np.asarray(right), err_msg=field.name)


def stored_files(home) -> list:
    return sorted((home / "preferences").glob("*.npz"))


def test_a_stored_fit_is_read_back_as_the_fresh_fit_and_not_fitted_again(small_synthetic, tmp_path, monkeypatch):
    fresh = fit_preferences(small_synthetic, QUICK)
    first = fitted_preferences(small_synthetic, QUICK, home=tmp_path)
    assert_same_model(first, fresh)
    assert len(stored_files(tmp_path)) == 1

    def must_not_fit(*_args, **_kwargs):
        raise AssertionError("a stored fit was fitted again")

    monkeypatch.setattr(preference_cache, "fit_preferences", must_not_fit)
    assert_same_model(fitted_preferences(small_synthetic, QUICK, home=tmp_path), fresh)


def test_other_data_or_settings_are_fitted_anew(small_synthetic, tmp_path):
    fitted_preferences(small_synthetic, QUICK, home=tmp_path)
    fitted_preferences(small_synthetic, replace(QUICK, seed=4), home=tmp_path)
    fewer = replace(small_synthetic, interactions=small_synthetic.interactions.iloc[:-50].reset_index(drop=True))
    model = fitted_preferences(fewer, QUICK, home=tmp_path)
    assert_same_model(model, fit_preferences(fewer, QUICK))
    assert len(stored_files(tmp_path)) == 3
    # A progress bar changes nothing fitted, so it finds the same file.
    assert preference_key(small_synthetic, replace(QUICK, progress=True)) == preference_key(small_synthetic, QUICK)


def test_the_fitting_code_is_part_of_the_key(small_synthetic, tmp_path, monkeypatch):
    before = preference_key(small_synthetic, QUICK)
    changed = tmp_path / "preferences_changed.py"
    changed.write_bytes(Path(preference_cache._fitting.__file__).read_bytes() + b"\n# a comment edited\n")
    monkeypatch.setattr(preference_cache._fitting, "__file__", str(changed))
    assert preference_key(small_synthetic, QUICK) != before


def test_an_unreadable_file_is_fitted_again_and_replaced(small_synthetic, tmp_path):
    fitted_preferences(small_synthetic, QUICK, home=tmp_path)
    (path,) = stored_files(tmp_path)
    path.write_bytes(b"not an npz")
    assert_same_model(fitted_preferences(small_synthetic, QUICK, home=tmp_path), fit_preferences(small_synthetic, QUICK))
    assert np.load(path)["thresholds"].shape == (4,)
    assert not list((tmp_path / "preferences").glob("*.part"))


def test_the_switch_turns_the_cache_off(small_synthetic, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_SWITCH, "0")
    fitted_preferences(small_synthetic, QUICK, home=tmp_path)
    assert not (tmp_path / "preferences").exists()
