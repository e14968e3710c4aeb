"""The data-meeting pack: several views as one Excel workbook (native charts), a slide deck and a ZIP.

A pack is a list of ``ViewSpec`` (a view of DESIGN §7 with its filters). Each view's table comes from
``analytics.outputs.views.build_view`` (so a public pack passes through the privacy rules) and its chart from
the same builders the pages use. Text cells are neutralised against formula injection.
"""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import altair as alt
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.outputs.exports import chart_bytes, safe_cell, safe_frame, view_chart, write_sheet
from analytics.outputs.views import build_view
from analytics.stats.gaps import gap_family

TITLES = {
    "rates": "Rates with 95% intervals",
    "status-change": "Status and change",
    "gaps": "Gaps between student groups",
    "disproportionality": "Discipline disproportionality (risk ratios)",
    "rp-impact": "Restorative-practices impact",
    "run-chart": "Run chart: suspensions per month",
}
# Views whose chart is a bar or line chart: they get a native Excel chart (column, value column).
NATIVE_CHARTS = {"rates": ("bar", "school_id", "value"), "gaps": ("bar", "student_group", "gap"),
                 "disproportionality": ("bar", "student_group", "risk_ratio"),
                 "rp-impact": ("bar", "outcome", "estimate"), "run-chart": ("line", "period", "value")}
SUPPRESSION_NOTE = ("Privacy rules applied: counts and rates for fewer than 10 students are shown as *, rates "
                    "<= 5% or >= 95% are coded, and complementary cells are suppressed.")


@dataclass(frozen=True)
class ViewSpec:
    view: str
    title: str
    filters: dict = field(default_factory=dict)

    @property
    def filter_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.filters.items() if v) or "whole district, every year"


@dataclass
class PackItem:
    spec: ViewSpec
    table: pd.DataFrame
    chart: alt.Chart | None
    finding: str


@dataclass
class Pack:
    title: str
    date: date
    public: bool
    items: list[PackItem]


def standard_specs(cluster: str | None = None, school: str | None = None, year: int | None = None,
                   metric: str = "read_proficient") -> list[ViewSpec]:
    """The usual quarterly pack for a scope: rates, status and change, gaps, discipline, RP impact, run chart."""
    scope = {"cluster": cluster, "school": school}
    return [
        ViewSpec("rates", f"{TITLES['rates']}: {metric}", {**scope, "year": year, "metric": metric}),
        ViewSpec("status-change", f"{TITLES['status-change']}: suspension rate",
                 {**scope, "year": year, "metric": "suspension_rate"}),
        ViewSpec("gaps", f"{TITLES['gaps']}: {metric}", {**scope, "year": year, "metric": metric}),
        ViewSpec("disproportionality", TITLES["disproportionality"], {**scope, "year": year}),
        ViewSpec("rp-impact", TITLES["rp-impact"], {"cluster": cluster}),
        ViewSpec("run-chart", TITLES["run-chart"], {**scope, "metric": "suspension_rate"}),
    ]


_PAGE_VIEWS = {"": ["rates"], "cluster": ["rates", "status-change"], "school": ["rates", "gaps"],
               "gaps": ["gaps", "status-change"], "discipline": ["disproportionality", "rp-impact", "run-chart"]}


def specs_from_url(url: str) -> list[ViewSpec]:
    """The tables behind a page URL, e.g. `/cluster?cluster=North&year=2025` -> rates and status-change."""
    parts = urlsplit(url.strip())
    path = parts.path.strip("/")
    if path not in _PAGE_VIEWS:
        raise ValueError(f"{url!r} is not a dashboard view (use /, /cluster, /school, /gaps or /discipline)")
    params = {k: v for k, v in parse_qsl(parts.query) if k != "share"}
    filters = {k: params.get(k) for k in ("cluster", "school", "metric", "group") if params.get(k) not in (None, "all")}
    if params.get("year", "").isdigit():
        filters["year"] = int(params["year"])
    return [ViewSpec(v, f"{TITLES[v]} ({path or 'district'})", filters) for v in _PAGE_VIEWS[path]]


def _rp_finding(text: pd.Series, row: pd.Series) -> str:
    """The RP verdict follows the randomization p-value and the estimate's sign (DESIGN §3)."""
    from analytics.stats.did import interval_text

    if not pd.notna(row["estimate"]):
        return f"{text['outcome']}: {str(text['method']).removeprefix('not estimable: ')}."
    moved = "fell" if row["estimate"] < 0 else "rose" if row["estimate"] > 0 else "did not move"
    verdict = ("unlikely to be chance alone." if row["p_value"] <= 0.05
               else "this could be chance: no change can be claimed.")
    return (f"{text['outcome']} {moved} by {abs(row['estimate']):.2f} at {int(row['n_rp_schools'])} RP school(s) "
            f"against {int(row['n_comparison_schools'])} comparison school(s) "
            f"({interval_text(row['ci_low'], row['ci_high'])}; randomization p = {row['p_value']:.3f}); {verdict}")


def _finding(view: str, table: pd.DataFrame) -> str:
    numeric = table.apply(pd.to_numeric, errors="coerce") if not table.empty else table
    if table.empty:
        return "No data for this view."
    if view == "rp-impact":
        return _rp_finding(table.iloc[0], numeric.iloc[0])
    if view == "disproportionality":
        flagged = table[table["flagged"].astype(str).str.lower() == "true"]
        return f"{flagged[['school_id', 'student_group']].drop_duplicates().shape[0]} school groups meet the 3-year " \
               "risk-ratio rule (3.0 or more in 3 consecutive years)."
    if view == "gaps":
        return gap_family(table).summary
    if view == "status-change":
        colours = table["color"].replace("", "no colour").value_counts()
        return "Colours: " + ", ".join(f"{k} {v}" for k, v in colours.items()) + "."
    if view == "run-chart":
        signals = (table["signal"].fillna("") != "").sum()
        return f"Median {numeric['median'].iloc[0]:.0f} per month; {signals} point(s) in a shift or trend signal."
    pooled = table[table["school_id"].astype(str).str.startswith(("cluster:", "district"))]
    return f"{len(table):,} rows; {len(pooled)} pooled rows (pooled from counts, Wilson 95% intervals)."


def _numeric_copy(table: pd.DataFrame) -> pd.DataFrame:
    """Suppressed marks become missing so a chart of a public table draws only released numbers."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object and col not in ("school_id", "student_group", "metric", "outcome", "ratio_type",
                                                    "trend", "signal", "color", "status_level", "change_level",
                                                    "reference", "method", "period", "cluster"):
            out[col] = pd.to_numeric(out[col], errors="coerce")
    return out


def build_pack(engine: Engine, specs: list[ViewSpec], title: str, on: date | None = None, public: bool = False,
               progress: Callable[[int, int, str], None] | None = None) -> Pack:
    items = []
    for i, spec in enumerate(specs, start=1):
        if progress:
            progress(i, len(specs), spec.title)
        table = build_view(engine, spec.view, public=public, **spec.filters)
        try:
            chart = view_chart(engine, spec.view, _numeric_copy(table), **spec.filters) if len(table) else None
        except (ValueError, KeyError):
            chart = None
        items.append(PackItem(spec, table, chart, _finding(spec.view, table)))
    return Pack(title, on or date.today(), public, items)


# --- writers --------------------------------------------------------------------------------------------


def _sheet_name(i: int, spec: ViewSpec, used: set[str]) -> str:
    name = f"{i} {spec.view}"[:31]
    while name in used:
        name = name[:29] + f"{len(used)}"
    used.add(name)
    return name


def _native_chart(ws, spec: ViewSpec, frame: pd.DataFrame, header_row: int) -> None:
    from openpyxl.chart import BarChart, LineChart, Reference

    kind, category, value = NATIVE_CHARTS[spec.view]
    if category not in frame.columns or value not in frame.columns:
        return
    rows = min(len(frame), 40)
    if rows == 0:
        return
    cat_col = list(frame.columns).index(category) + 1
    val_col = list(frame.columns).index(value) + 1
    chart = LineChart() if kind == "line" else BarChart()
    if kind == "bar":
        chart.type = "bar"
    chart.title = spec.title[:60]
    chart.y_axis.title = value.replace("_", " ")
    chart.x_axis.title = category.replace("_", " ")
    chart.height, chart.width = 9, 18
    data = Reference(ws, min_col=val_col, min_row=header_row, max_row=header_row + rows)
    cats = Reference(ws, min_col=cat_col, min_row=header_row + 1, max_row=header_row + rows)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    ws.add_chart(chart, ws.cell(row=2, column=len(frame.columns) + 2).coordinate)


def workbook_bytes(pack: Pack) -> bytes:
    """A cover sheet and one formatted sheet per view, with native Excel charts for bar and line views."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    cover = book.active
    cover.title = "Cover"
    cover.append([safe_cell(pack.title)])
    cover["A1"].font = Font(bold=True, size=16)
    cover.append([f"Prepared {pack.date:%Y-%m-%d}"])
    cover.append(["Data source: School Support & Improvement Dashboard (SSIF metrics and discipline files)"])
    cover.append([SUPPRESSION_NOTE if pack.public else "For internal use: not suppressed for public release."])
    cover.append([])
    cover.append(["Sheet", "View", "Filters", "Finding"])
    for cell in cover[cover.max_row]:
        cell.font = Font(bold=True)
    used: set[str] = {"Cover"}
    for i, item in enumerate(pack.items, start=1):
        name = _sheet_name(i, item.spec, used)
        cover.append([name, safe_cell(item.spec.title), safe_cell(item.spec.filter_text), safe_cell(item.finding)])
        ws = book.create_sheet(name)
        notes = [f"Filters: {item.spec.filter_text}", f"Source: dashboard database; prepared {pack.date:%Y-%m-%d}",
                 SUPPRESSION_NOTE if pack.public else "Not suppressed: internal use only.", item.finding]
        frame, header_row = write_sheet(ws, item.table, item.spec.title, notes)
        if item.spec.view in NATIVE_CHARTS:
            _native_chart(ws, item.spec, frame, header_row)
    cover.column_dimensions["A"].width = 22
    cover.column_dimensions["B"].width = 48
    cover.column_dimensions["C"].width = 40
    cover.column_dimensions["D"].width = 90
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def deck_bytes(pack: Pack) -> bytes:
    """A title slide and one slide per view: the chart image and its plain-language finding."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(13.333), Inches(7.5)
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = pack.title
    first.placeholders[1].text = f"Data meeting, {pack.date:%d %B %Y}" + ("\n" + SUPPRESSION_NOTE if pack.public else "")
    for item in pack.items:
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = item.spec.title
        if item.chart is not None:
            image = io.BytesIO(chart_bytes(item.chart, "png", scale=2))
            slide.shapes.add_picture(image, Inches(0.6), Inches(1.4), height=Inches(4.6))
        box = slide.shapes.add_textbox(Inches(0.6), Inches(6.2), Inches(12), Inches(1.0)).text_frame
        box.word_wrap = True
        box.text = item.finding
        box.paragraphs[0].runs[0].font.size = Pt(16)
        if pack.public:
            note = box.add_paragraph()
            note.text = SUPPRESSION_NOTE
            note.runs[0].font.size = Pt(10)
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def zip_bytes(pack: Pack) -> bytes:
    """The workbook, the deck, every chart as PNG and SVG, and every table as CSV."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pack.xlsx", workbook_bytes(pack))
        archive.writestr("pack.pptx", deck_bytes(pack))
        for i, item in enumerate(pack.items, start=1):
            stem = f"{i:02d}-{item.spec.view}"
            archive.writestr(f"tables/{stem}.csv", safe_frame(item.table).to_csv(index=False))
            if item.chart is not None:
                archive.writestr(f"charts/{stem}.png", chart_bytes(item.chart, "png"))
                archive.writestr(f"charts/{stem}.svg", chart_bytes(item.chart, "svg"))
    return buffer.getvalue()


WRITERS = {".xlsx": workbook_bytes, ".pptx": deck_bytes, ".zip": zip_bytes}


def meeting_command(engine: Engine, args) -> int:
    """`python -m analytics export meeting [--cluster C] [--school S] [--year Y] [--public] -o FILE`."""
    if not args.output or Path(args.output).suffix.lower() not in WRITERS:
        print("error: export meeting needs -o FILE.xlsx, FILE.pptx or FILE.zip", file=sys.stderr)
        return 2
    from analytics.outputs.views import ViewError

    specs = standard_specs(args.cluster, args.school, args.year, args.metric or "read_proficient")
    scope = args.school or args.cluster or "district"

    def progress(i: int, total: int, title: str) -> None:
        print(f"[{i}/{total}] {title}", file=sys.stderr)

    try:
        pack = build_pack(engine, specs, f"Data meeting: {scope}", public=args.public, progress=progress)
    except ViewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.output)
    path.write_bytes(WRITERS[path.suffix.lower()](pack))
    print(f"wrote {path}", file=sys.stderr)
    return 0
