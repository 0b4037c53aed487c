"""HTML tables of the report (sortable by a click on a column) and the page's style and script."""
import html
from typing import Dict, List

def html_table(rows: List[Dict], columns: List[str], sortable: bool = True, fmt: Dict[str, str] = None) -> str:
    fmt = fmt or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            text = format(v, fmt[c]) if c in fmt and isinstance(v, (int, float)) else str(v)
            sort = f' data-sort="{v}"' if isinstance(v, (int, float)) else ""
            cells.append(f"<td{sort}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const up = th.dataset.dir !== 'up';
  th.dataset.dir = up ? 'up' : 'down';
  const key = td => td.dataset.sort !== undefined ? parseFloat(td.dataset.sort) : td.textContent;
  [...body.rows].sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1);
  }).forEach(r => body.appendChild(r));
}));
document.body.dataset.ready = 'yes';
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
.scroll td { white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; } td:first-child, th:first-child { text-align: left; }
tr.front td { background: #fff4e0; } img.plot { max-width: 900px; width: 100%; }
.scroll { overflow-x: auto; max-width: 100%; }
.crops figure { display: inline-block; vertical-align: top; width: 144px; margin: 4px; }
.crops img, .crops .noerror { display: block; width: 144px; height: 144px; image-rendering: pixelated; margin-bottom: 2px; }
figcaption { font-size: 11px; height: 2.8em; line-height: 1.4em; overflow: hidden; white-space: nowrap;
  text-overflow: ellipsis; }
"""
