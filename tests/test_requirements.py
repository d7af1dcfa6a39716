"""The optional pieces' switch (tests/conftest.py): a missing llama.cpp, Ray or Chromium skips a test, but
fails it under its RECARENA_REQUIRE_* variable, which `make test` sets for all of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root_conftest(request):
    return next(p for p in request.config.pluginmanager.get_plugins()
                if Path(getattr(p, "__file__", "") or "").resolve() == ROOT / "tests" / "conftest.py")  # fmt: skip


def test_a_missing_piece_skips_but_fails_when_required(root_conftest, monkeypatch):
    monkeypatch.setitem(root_conftest.REQUIREMENTS, "nothing", ("RECARENA_REQUIRE_NOTHING", "not here", lambda: False))
    monkeypatch.delenv("RECARENA_REQUIRE_NOTHING", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not here"):
        root_conftest.require("nothing")
    monkeypatch.setenv("RECARENA_REQUIRE_NOTHING", "1")
    with pytest.raises(pytest.fail.Exception, match="RECARENA_REQUIRE_NOTHING is set"):
        root_conftest.require("nothing")
    root_conftest.require_or_skip("pytest", "RECARENA_REQUIRE_NOTHING", "pytest is here")  # present: nothing happens
    with pytest.raises(pytest.fail.Exception):
        root_conftest.require_or_skip("recarena_no_such_module", "RECARENA_REQUIRE_NOTHING", "absent")


def test_make_test_requires_every_optional_piece(root_conftest):
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no test target"
    command = next(line for line in recipe.group(1).splitlines() if "pytest" in line)
    wanted = {env_var for env_var, _, _ in root_conftest.REQUIREMENTS.values()}
    assert wanted == {"RECARENA_REQUIRE_LLAMA", "RECARENA_REQUIRE_RAY", "RECARENA_REQUIRE_CHROMIUM", "RECARENA_REQUIRE_TUNE", "RECARENA_REQUIRE_RL"}
    for env_var in wanted:
        assert re.search(rf"\b{env_var}=1\b", command), env_var


def test_no_test_skips_an_optional_piece_on_its_own():
    """Every llama.cpp / Ray / Chromium skip goes through the switch (a bare importorskip would stay a skip)."""
    bare = re.compile(r"importorskip\(\s*[\"'](llama_cpp|ray)[\"']|find_spec\(\s*[\"'](llama_cpp|ray)[\"']|chromium_path\(\)")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
                 if p.name != "conftest.py" or p.parent != ROOT / "tests"
                 if bare.search(p.read_text())]  # fmt: skip
    assert offenders == []
