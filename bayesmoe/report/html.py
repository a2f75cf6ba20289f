"""Building blocks of the self-contained HTML reports: inline PNG images, tables, the page shell.

A page has no script and no external URL: images are ``data:image/png;base64,...`` URIs, the style
sheet is inline, and links point to sibling files by relative paths.
"""

from __future__ import annotations

import base64
import html
import io
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Section", "esc", "figure_to_data_uri", "guarded", "render_page", "table_html"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.note{color:#555;font-size:.9em}.error{background:#fee;border:1px solid #c66;padding:.5em}
.meta td{text-align:left}.bad{color:#b00;font-weight:bold}
nav a{margin-right:1em}
"""


def esc(text) -> str:
    """HTML-escape any value's ``str``."""
    return html.escape(str(text), quote=True)


def figure_to_data_uri(fig, *, dpi: int = 80) -> str:
    """Render a matplotlib Figure to a ``data:image/png;base64`` URI (and close it if pyplot's).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from bayesmoe.report.html import figure_to_data_uri
    >>> fig = Figure(figsize=(2, 1)); _ = fig.subplots().plot([0, 1])
    >>> figure_to_data_uri(fig).startswith("data:image/png;base64,iVBORw0KGgo")
    True
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt = sys.modules.get("matplotlib.pyplot")  # only pyplot-managed figures need closing
    num = getattr(fig, "number", None)
    if plt is not None and num is not None and plt.fignum_exists(num):
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def table_html(
    df: pd.DataFrame,
    *,
    float_format: str = "{:.4g}",
    index: bool = True,
    raw_columns: Sequence[str] = (),
) -> str:
    """An escaped HTML table; `raw_columns` hold trusted HTML (e.g. links built here)."""
    cols = list(df.columns)
    head = ("<th class='l'></th>" if index else "") + "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for idx, r in df.iterrows():
        cells = [f"<td class='l'>{esc(idx)}</td>"] if index else []
        for c in cols:
            v = r[c]
            if c in raw_columns:
                cells.append(f"<td class='l'>{v}</td>")
            elif isinstance(v, float):
                cells.append(f"<td>{esc(float_format.format(v)) if pd.notna(v) else ''}</td>")
            else:
                txt = "" if v is None or (not isinstance(v, str) and pd.isna(v)) else v
                cells.append(f"<td class='l'>{esc(txt)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@dataclass
class Section:
    """A titled part of a page: HTML body fragments and image URIs."""

    title: str
    html: list[str] = field(default_factory=list)

    def add_image(self, uri: str, alt: str) -> None:
        self.html.append(f"<img src='{uri}' alt='{esc(alt)}'>")

    def add_note(self, text: str) -> None:
        self.html.append(f"<p class='note'>{esc(text)}</p>")

    def add_error(self, text: str) -> None:
        self.html.append(f"<p class='error'>{esc(text)}</p>")


def guarded(section: Section, what: str, fn: Callable[[Section], None]) -> bool:
    """Fill `section` with ``fn(section)``; on an exception show it in the page and warn.

    A report of hundreds of fits should not be lost to one plot that cannot be drawn, but the
    failure is visible (an error box naming the plot and the exception) and warned about.
    """
    try:
        fn(section)
        return True
    except Exception as err:
        msg = f"could not draw {what}: {type(err).__name__}: {err}".splitlines()[0]
        section.add_error(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
        return False


def render_page(
    title: str,
    sections: Sequence[Section],
    *,
    meta: dict | None = None,
    nav: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole HTML document (UTF-8, inline CSS, no scripts, no external URLs)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
    ]
    if nav:
        parts.append(
            "<nav>"
            + "".join(f"<a href='{esc(href)}'>{esc(label)}</a>" for label, href in nav)
            + "</nav>"
        )
    parts.append(f"<h1>{esc(title)}</h1>")
    if meta:
        parts.append(
            "<table class='meta'>"
            + "".join(
                f"<tr><th class='l'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in meta.items()
            )
            + "</table>"
        )
    for s in sections:
        parts.append(f"<h2>{esc(s.title)}</h2>")
        parts.extend(s.html)
    parts.append(
        "<p class='note'>Written by bayesmoe.report; self-contained (no scripts, no "
        "external resources).</p></body></html>"
    )
    return "\n".join(parts)
