"""Exporting a view's table (CSV, XLSX) or chart (PNG, SVG): `python -m analytics export VIEW`.

Text cells that begin with `=`, `+`, `-`, `@`, a tab or a carriage return are neutralised with a
leading apostrophe so no spreadsheet can run them as formulas; numbers stay numbers.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.outputs.labels import counted
from analytics.outputs.views import VIEWS, ViewError, build_view, why_empty

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A text value made inert for spreadsheets; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe_cell)
    out.columns = [safe_cell(str(c)) for c in out.columns]
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return safe_frame(df).to_csv(index=False).encode("utf-8")


def write_sheet(ws, df: pd.DataFrame, title: str, notes: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """Fill a worksheet: title, notes, a frozen bold header, the rows, number formats, widths, a filter.

    Returns the neutralised frame as written and the header's row number (for charts on the sheet).
    """
    from openpyxl.styles import Font, PatternFill

    ws.append([safe_cell(title)])
    ws["A1"].font = Font(bold=True, size=14)
    for note in notes or []:
        ws.append([safe_cell(note)])
    ws.append([" "])
    frame = safe_frame(df)
    ws.append(list(frame.columns))
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="0072B2")
    for row in frame.itertuples(index=False):
        ws.append([None if isinstance(v, float) and pd.isna(v) else (bool(v) if isinstance(v, np.bool_) else v)
                   for v in row])
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    if len(frame.columns):
        ws.auto_filter.ref = f"A{header_row}:{ws.cell(row=ws.max_row, column=len(frame.columns)).coordinate}"
    for i, col in enumerate(frame.columns, start=1):
        letter = ws.cell(row=header_row, column=i).column_letter
        width = max([len(str(col))] + [len(str(v)) for v in frame[col].head(200)]) + 2
        ws.column_dimensions[letter].width = min(max(width, 8), 48)
        fmt = _number_format(str(col))
        for (cell,) in ws.iter_rows(min_row=header_row + 1, min_col=i, max_col=i):
            if isinstance(cell.value, float):
                cell.number_format = fmt
    return frame, header_row


def _number_format(column: str) -> str:
    """Counts without decimals, ratios with two, p- and q-values with three, percentages with one."""
    name = column.lower()
    if "(n)" in name or name in ("numerator", "denominator", "enrolled", "count", "n_schools", "schools"):
        return "#,##0"
    if "p-value" in name or "q-value" in name or name in ("p_value", "q_value"):
        return "0.000"
    return "0.00" if "ratio" in name else "0.0"


def to_xlsx_bytes(df: pd.DataFrame, title: str, notes: list[str] | None = None) -> bytes:
    """A workbook with one formatted sheet (see :func:`write_sheet`)."""
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "view"
    write_sheet(ws, df, title, notes)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def view_chart(engine: Engine, view: str, table: pd.DataFrame, **filters) -> alt.Chart:
    """The chart that goes with a view's table: the same figure a data-meeting pack shows."""
    from analytics.outputs.pack_views import PACK_VIEWS, context

    if view not in PACK_VIEWS:
        raise ViewError(f"no chart for view {view!r}")
    figure = PACK_VIEWS[view].figure(context(engine, filters), table) if len(table) else None
    if figure is None or figure.chart is None:  # an image that says so, not an empty frame
        message = pd.DataFrame({"text": [f"No data to chart for {view} with these filters."]})
        return alt.Chart(message).mark_text(fontSize=16).encode(text="text:N").properties(
            title=view, width=480, height=120, description=message["text"].iloc[0])
    return figure.chart


def chart_bytes(chart: alt.Chart, fmt: str, scale: float = 2.0) -> bytes:
    """PNG (at `scale` for print) or SVG through vl-convert; no browser needed."""
    import vl_convert as vlc

    spec = chart.to_json()
    if fmt == "svg":
        return vlc.vegalite_to_svg(spec).encode("utf-8")
    return vlc.vegalite_to_png(spec, scale=scale)


def export_meeting(engine: Engine, args) -> int:
    """The whole data-meeting pack; its builder lives in `analytics.outputs.meeting` when installed."""
    try:
        from analytics.outputs.meeting import meeting_command
    except ImportError:
        print("error: the data-meeting pack export is not available yet; export views one at a time",
              file=sys.stderr)
        return 2
    from analytics.data import loads

    counts = loads.table_counts(engine)
    if not any(counts.get(name, 0) for name in ("metrics", "discipline", "incidents")):
        print(f"note: the pack's views are empty: {why_empty(engine, 'rates')}", file=sys.stderr)
    return meeting_command(engine, args)


def export_command(engine: Engine, args) -> int:
    """`python -m analytics export VIEW ...`: CSV to stdout by default; `-o` picks the format by suffix."""
    if args.view == "meeting":
        return export_meeting(engine, args)
    filters = {k: getattr(args, k) for k in ("year", "cluster", "school", "metric", "group")}
    if args.view != "learning" and getattr(args, "program", None):
        print("error: --program applies to `export learning` only", file=sys.stderr)
        return 2
    since = {"since": args.since} if getattr(args, "since", None) else {}
    try:
        table = build_view(engine, args.view, public=args.public, program=getattr(args, "program", None), **filters,
                           **since)
    except ViewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.output) if args.output else None
    suffix = path.suffix.lower() if path else ".csv"
    if table.empty:
        print(f"note: no rows: {why_empty(engine, args.view)}", file=sys.stderr)
    if path is None:
        sys.stdout.write(to_csv_bytes(table).decode("utf-8"))
        return 0
    if suffix == ".csv":
        path.write_bytes(to_csv_bytes(table))
    elif suffix == ".xlsx":
        notes = [f"Filters: {', '.join(f'{k}={v}' for k, v in filters.items() if v) or 'none'}",
                 "Privacy rules applied (n < 10 suppressed)." if args.public else "Not for public release."]
        path.write_bytes(to_xlsx_bytes(table, args.view, notes))
    elif suffix in (".png", ".svg"):
        try:
            chart = view_chart(engine, args.view, table, **filters)
        except ViewError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        path.write_bytes(chart_bytes(chart, suffix[1:]))
    else:
        print(f"error: unknown output type {suffix!r}; use .csv, .xlsx, .png or .svg", file=sys.stderr)
        return 2
    print(f"wrote {path} ({counted(len(table), 'row')})", file=sys.stderr)
    return 0


__all__ = ["VIEWS", "chart_bytes", "export_command", "safe_cell", "to_csv_bytes", "to_xlsx_bytes"]
