"""Building blocks of every scenario's ``report.html``: number formatting, tables, embedded plots, the page.

Reports are single files: plots are matplotlib PNGs embedded as base64 and the style is inline, so
a report opens anywhere offline. `recarena.scenarios.checker.check_report_renders` checks a page
in headless Chromium (no table wider than the page, no broken image).
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; table-layout: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; font-size: 13px; white-space: nowrap; }
td.text { text-align: left; white-space: normal; max-width: 420px; overflow-wrap: anywhere; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; }
.better { color: #176b1c; font-weight: bold; } .worse { color: #a31515; font-weight: bold; }
.note { color: #555; font-size: 13px; max-width: 900px; }
img { max-width: 100%; }
"""

escape = html.escape


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: 3 decimals, small values in general format, None/NaN as '-'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def png(figure) -> str:
    """A matplotlib figure as an embedded ``<img>`` (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(header: list[str], rows: list[list[str]], text_columns: tuple[int, ...] = ()) -> str:
    """An HTML table; cells are inserted as given (escape text yourself), `text_columns` wrap and align left."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"text" if j in text_columns else ""}">{cell}</td>' for j, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>")  # fmt: skip
