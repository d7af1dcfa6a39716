"""Conformance checks for scenarios, shipped with the library (as PettingZoo ships its API tests).

`check_scenario(scenario, config)` runs a scenario on a (tiny) config and checks the contract of
`recarena.scenarios.contract`; `check_report_renders(path)` opens a report in headless Chromium.
Both raise AssertionError with a message saying what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from recarena.scenarios.config import CommonOptions
from recarena.scenarios.contract import Scenario, ScenarioError, timing_free


def check_config_type(config_type: type) -> None:
    """A dataclass inheriting `CommonOptions` (so ``dataset``, ``seed``, ``out`` and ``progress``); every field
    documented; ``validate`` defined."""
    assert dataclasses.is_dataclass(config_type), f"{config_type.__name__} is not a dataclass"
    assert issubclass(config_type, CommonOptions), \
        f"{config_type.__name__} does not inherit recarena.scenarios.config.CommonOptions (dataset, seed, out, progress)"  # fmt: skip
    for field in dataclasses.fields(config_type):
        assert field.metadata.get("help"), f"{config_type.__name__}.{field.name} has no help text (use scenarios.config.option)"
    assert callable(getattr(config_type, "validate", None)), f"{config_type.__name__} has no validate() method"


def check_scenario(scenario: Scenario, config: Any, *, rerun: bool = True) -> dict[str, Any]:
    """Run `scenario` on `config` and check the contract; returns the results.

    With `rerun`, the scenario runs a second time into a fresh directory with the same config and
    must give the same results apart from timings (seeded reproducibility).
    """
    assert isinstance(scenario, Scenario), f"{scenario!r} is not a Scenario"
    assert scenario.name and scenario.help, "a scenario needs a name and a help line"
    assert isinstance(config, scenario.config_type), f"config is a {type(config).__name__}, not {scenario.config_type.__name__}"
    check_config_type(scenario.config_type)
    config.validate()
    results = scenario.run(config)
    assert isinstance(results, dict), f"run() returned {type(results).__name__}, not a dict"
    out = Path(config.out)
    stored = out / "results.json"
    assert stored.is_file(), f"run() wrote no {stored}"
    on_disk = json.loads(stored.read_text())
    assert isinstance(on_disk, dict) and on_disk, f"{stored} is empty"
    if getattr(config, "html", False):
        assert (out / "report.html").is_file(), f"html is on but run() wrote no {out / 'report.html'}"
    text = scenario.summary(results)
    assert isinstance(text, str) and text.strip(), "summary() returned no text"
    if rerun:
        again = dataclasses.replace(config, out=out.with_name(out.name + "-rerun"), progress=False)
        second = json.loads((Path(again.out) / "results.json").read_text()) if scenario.run(again) is not None else {}
        first_clean, second_clean = _without_paths(timing_free(on_disk)), _without_paths(timing_free(second))
        assert first_clean == second_clean, f"{scenario.name}: the same seed gave different results: {_first_difference(first_clean, second_clean)}"
    return results


def check_validation_names_field(config_type: type, field: str, bad_value: Any, **others: Any) -> str:
    """``validate`` on a config with ``field=bad_value`` raises ScenarioError whose message names `field`."""
    config = config_type(**{field: bad_value, **others})
    try:
        config.validate()
    except ScenarioError as error:
        message = str(error)
        assert "\n" not in message, f"the error for {field} is more than one line: {message!r}"
        assert field in message, f"the error for {field}={bad_value!r} does not name the field: {message!r}"
        return message
    raise AssertionError(f"{config_type.__name__}({field}={bad_value!r}).validate() accepted a bad value")


_CHECK_SCRIPT = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const bad = [];
  document.querySelectorAll('table').forEach(t => { if (t.scrollWidth > t.parentElement.clientWidth + 1) bad.push('table of ' + t.rows[0].textContent.slice(0, 60)); });
  document.querySelectorAll('td, th').forEach(c => { if (c.scrollWidth > c.clientWidth + 1) bad.push(c.textContent.slice(0, 40)); });
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute('data-overflowing', bad.join('|'));
  document.body.setAttribute('data-broken-images', String(broken));
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-checked', 'yes');
}, 0));
</script></body>"""


def chromium_path() -> str | None:
    """The headless browser used to check reports, if installed (`make test` installs Debian's chromium)."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def check_report_renders(report: str | Path, *, screenshot: Path | None = None, min_images: int = 0) -> dict[str, Any]:
    """Open `report` in headless Chromium: it loads, no table or cell overflows, no image is broken.

    Returns ``{"images": n, "screenshot": path or None}``. Raises AssertionError on a failure and
    RuntimeError when Chromium is not installed.
    """
    browser = chromium_path()
    if browser is None:
        raise RuntimeError("chromium is not installed (make test installs Debian's package)")
    with tempfile.TemporaryDirectory(prefix="recarena-report-") as workdir:
        checked = Path(workdir) / "report.html"
        checked.write_text(Path(report).read_text(encoding="utf-8").replace("</body>", _CHECK_SCRIPT), encoding="utf-8")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", f"--user-data-dir={Path(workdir) / 'profile'}",
                 "--virtual-time-budget=5000", "--window-size=1280,4000"]  # fmt: skip
        dom = subprocess.run([browser, *flags, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=180)
        assert 'data-checked="yes"' in dom.stdout, f"{report}: the page did not load in chromium: {dom.stderr[-1500:]}"
        overflowing = re.search(r'data-overflowing="([^"]*)"', dom.stdout).group(1)
        assert overflowing == "", f"{report}: text overflows its table: {overflowing}"
        broken = int(re.search(r'data-broken-images="(\d+)"', dom.stdout).group(1))
        assert broken == 0, f"{report}: {broken} broken images"
        images = int(re.search(r'data-images="(\d+)"', dom.stdout).group(1))
        assert images >= min_images, f"{report}: {images} images, expected at least {min_images}"
        if screenshot is not None:
            subprocess.run([browser, *flags, f"--screenshot={screenshot}", checked.as_uri()], capture_output=True, timeout=180)
            assert screenshot.exists() and screenshot.stat().st_size > 10_000, f"{report}: no screenshot"
    return {"images": images, "screenshot": screenshot}


def _without_paths(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if k not in ("out", "directory", "path", "llm_cache")}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or 'results'}: {str(a)[:120]} != {str(b)[:120]}"
