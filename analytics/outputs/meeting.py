"""The data-meeting pack: several views as one Excel workbook (native charts), a slide deck and a ZIP.

A pack is a list of ``ViewSpec`` (a view of DESIGN §7 with its filters) about one scope (a school, a
cluster or the district). What each view shows (its table for people, chart, native chart rows and
finding) is a ``PackView`` in ``analytics.outputs.pack_views.PACK_VIEWS``; register one there to add a
sheet and slide kind. Tables come from ``analytics.outputs.views.build_view`` (so a public pack passes
through the privacy rules). Everything people read names schools, clusters, groups and metrics
(DESIGN §5); text cells are neutralised against formula injection.
"""

from __future__ import annotations

import io
import re
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

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.catalog import school_labels
from analytics.outputs.exports import chart_bytes, safe_cell, safe_frame, write_sheet
from analytics.outputs.labels import year_label
from analytics.outputs.pack_views import PACK_VIEWS, Context, Figure, GoalProgressOf, context
from analytics.workspace import pack as _workspace_views  # noqa: F401 - registers "changes" (first) and "goals"

TITLES = {name: view.title for name, view in PACK_VIEWS.items()}
SUPPRESSION_NOTE = ("Privacy rules applied: counts and rates for fewer than 10 students are shown as *, rates "
                    "<= 5% or >= 95% are coded, and complementary cells are suppressed.")
INTERNAL_NOTE = "For internal use: not suppressed for public release."


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
    table: pd.DataFrame  # the view's table as computed (codes; the CSV contract)
    sheet: pd.DataFrame  # the same table for people: names, labels, human headers
    figure: Figure | None
    finding: str
    filters_text: str = ""

    @property
    def chart(self) -> alt.Chart | None:
        return self.figure.chart if self.figure else None

    @property
    def alt_text(self) -> str:
        """The chart's text alternative: what it shows and what it says."""
        title = self.chart.title if self.chart is not None else self.spec.title
        text = getattr(title, "text", title)
        return f"Chart: {text if isinstance(text, str) else self.spec.title}. {self.finding}"


@dataclass
class Pack:
    title: str
    date: date
    public: bool
    items: list[PackItem]
    schools: list[str] = field(default_factory=list)  # names (ids) of the schools the pack is about

    @property
    def stem(self) -> str:
        return file_stem(self.title)


def file_stem(title: str) -> str:
    """A file name from a pack title: "Data meeting: North cluster, 2024-25" -> "data-meeting-north-cluster-2024-25"."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "data-meeting"


def pack_title(schools: pd.DataFrame, cluster: str | None = None, school: str | None = None,
               year: int | None = None) -> str:
    """The pack's title follows its scope: "Data meeting: Lincoln ES (North cluster), 2024-25"."""
    if school:
        row = schools[schools["school_id"].astype(str) == str(school)]
        name = school_labels(schools).get(str(school), school)
        scope = f"{name} ({row['cluster'].iloc[0]} cluster)" if len(row) and str(row["cluster"].iloc[0]) not in name \
            else str(name)
    else:
        scope = f"{cluster} cluster" if cluster else "District"
    return f"Data meeting: {scope}" + (f", {year_label(year)}" if year else "")


def standard_specs(cluster: str | None = None, school: str | None = None, year: int | None = None,
                   metric: str = "read_proficient", schools: pd.DataFrame | None = None,
                   metric_names: dict[str, str] | None = None, settings: Settings = DEFAULT_SETTINGS) -> list[ViewSpec]:
    """The usual quarterly pack for a scope: what changed since the last meeting first, then rates, status and
    change, gaps, discipline, RP impact, run chart, and School Performance Plan goals.

    Rates, status and change, and gaps are of the chosen metric; a metric with no status cut points has no
    colours, so its status-and-change slide is the suspension rate's and its title says why. RP impact is
    estimated for the school itself when it is an RP school (against the district's never-treated schools),
    otherwise for its cluster; the slide's title says which.
    """
    scope = {"cluster": cluster, "school": school}
    names = metric_names or {}
    label = names.get(metric, metric.replace("_", " "))
    coloured, status_title = metric, f"{TITLES['status-change']}: {label}"
    if not any(m == metric for m, _ in settings.status_cuts):
        coloured = "suspension_rate"
        status_title = (f"{TITLES['status-change']}: {names.get(coloured, 'Suspension rate')}, as {label} has no "
                        "colour cut points")
    rp_filters, rp_scope = {"cluster": cluster}, f"{cluster} cluster" if cluster else "the district"
    if school and schools is not None:
        row = schools[schools["school_id"].astype(str) == str(school)]
        if len(row) and pd.notna(row["rp_start_year"].iloc[0]):
            rp_filters, rp_scope = {"school": school}, str(school_labels(schools).get(str(school), school))
        elif len(row):
            rp_filters, rp_scope = {"cluster": row["cluster"].iloc[0]}, f"{row['cluster'].iloc[0]} cluster"
    return [
        ViewSpec("changes", TITLES["changes"], scope),
        ViewSpec("rates", f"{TITLES['rates']}: {label}", {**scope, "year": year, "metric": metric}),
        ViewSpec("status-change", status_title, {**scope, "year": year, "metric": coloured}),
        ViewSpec("gaps", f"{TITLES['gaps']}: {label}", {**scope, "year": year, "metric": metric}),
        ViewSpec("disproportionality", TITLES["disproportionality"], {**scope, "year": year}),
        ViewSpec("rp-impact", f"{TITLES['rp-impact']}: {rp_scope}", rp_filters),
        ViewSpec("run-chart", TITLES["run-chart"], {**scope, "metric": "suspension_rate"}),
        ViewSpec("goals", TITLES["goals"], scope),
    ]


_PAGE_VIEWS = {"": ["rates"], "cluster": ["rates", "status-change"], "school": ["rates", "gaps"],
               "gaps": ["gaps", "status-change"], "discipline": ["disproportionality", "rp-impact", "run-chart"],
               "learning": ["learning"]}


def specs_from_url(url: str) -> list[ViewSpec]:
    """The tables behind a page URL, e.g. `/cluster?cluster=North&year=2025` -> rates and status-change."""
    parts = urlsplit(url.strip())
    path = parts.path.strip("/")
    if path not in _PAGE_VIEWS:
        raise ValueError(f"{url!r} is not a dashboard view (use /, /cluster, /school, /gaps or /discipline)")
    params = {k: v for k, v in parse_qsl(parts.query) if k != "share"}
    keys = ("program",) if path == "learning" else ("cluster", "school", "metric", "group")
    filters = {k: params.get(k) for k in keys if params.get(k) not in (None, "all")}
    if params.get("year", "").isdigit():
        filters["year"] = int(params["year"])
    return [ViewSpec(v, f"{TITLES[v]} ({path or 'district'})", filters) for v in _PAGE_VIEWS[path]]


def learning_specs(engine: Engine) -> list[ViewSpec]:
    """The professional-learning sheet and slide, when any programme has been imported (asked by `EXISTS`: a
    count of every imported table took seconds of the meeting page's first view at 10,000 schools)."""
    from analytics.data import loads

    if not loads.tables_present(engine)["pl_programs"]:
        return []
    return [ViewSpec("learning", TITLES["learning"], {})]


def _filters_text(ctx, filters: dict) -> str:
    """A view's filters as people read them: "School: Lincoln ES (100003) · School year: 2024-25"."""
    from analytics.data.catalog import group_label

    parts = []
    if filters.get("school"):
        parts.append(f"School: {ctx.names.get(str(filters['school']), filters['school'])} ({filters['school']})")
    if filters.get("cluster"):
        parts.append(f"Cluster: {filters['cluster']}")
    if filters.get("year"):
        parts.append(f"School year: {year_label(filters['year'])}")
    if filters.get("metric"):
        parts.append(f"Metric: {ctx.metric()}")
    if filters.get("group"):
        parts.append(f"Student group: {group_label(filters['group'])}")
    if filters.get("program"):
        parts.append(f"Programme: {filters['program']}")
    return " · ".join(parts) or "Whole district, every year"


def build_pack(engine: Engine, specs: list[ViewSpec], title: str, on: date | None = None, public: bool = False,
               progress: Callable[[int, int, str], None] | None = None,
               goal_progress: GoalProgressOf | None = None) -> Pack:
    """Compute every view of the pack: its table, the table for people, its figure and its finding.

    ``goal_progress``: a scope's goal progress when the caller already holds every goal's (the app computes it
    once per data version); what changed and the goals sheet slice it instead of computing it again."""
    items = []
    base = context(engine, {})
    for i, spec in enumerate(specs, start=1):
        if progress:
            progress(i, len(specs), spec.title)
        view = PACK_VIEWS[spec.view]
        ctx = Context(engine, base.schools, base.metric_names, dict(spec.filters), public)
        table = view.build_table(engine, spec.view, spec.filters, public, goal_progress)
        try:
            figure = view.figure(ctx, table) if len(table) else None
        except (ValueError, KeyError):
            figure = None
        item = PackItem(spec, table, view.people(spec.view, ctx, table), figure, view.finding(ctx, table),
                        _filters_text(ctx, spec.filters))
        if figure is not None and figure.chart is not None:
            figure.chart = figure.chart.properties(description=item.alt_text)
        items.append(item)
    schools_named = {s.filters.get("school") for s in specs} - {None}
    clusters_named = {s.filters.get("cluster") for s in specs} - {None}
    one_scope = len(schools_named) == 1 or (not schools_named and len(clusters_named) == 1)
    names = _school_list(base.schools, specs) if one_scope else []
    return Pack(title, on or date.today(), public, items, names)


def _school_list(schools: pd.DataFrame, specs: list[ViewSpec]) -> list[str]:
    """The schools a one-scope pack is about, as "Name (id)"."""
    school = next((s.filters.get("school") for s in specs if s.filters.get("school")), None)
    cluster = next((s.filters.get("cluster") for s in specs if s.filters.get("cluster")), None)
    members = schools[schools["school_id"].astype(str) == str(school)] if school else \
        schools[schools["cluster"] == cluster]
    labels = school_labels(members)
    return [f"{labels.get(str(sid), sid)} ({sid})" for sid in members.sort_values("school_name")["school_id"]]


# --- writers --------------------------------------------------------------------------------------------


def _sheet_name(i: int, title: str, used: set[str]) -> str:
    clean = re.sub(r"[\[\]:*?/\\]", " ", title)
    name = f"{i} {clean}"[:31].rstrip()
    while name in used:
        name = name[:28] + f" {len(used)}"
    used.add(name)
    return name


def _chart_block(ws, figure: Figure, first_col: int, header_row: int) -> tuple[int, int]:
    """Write the rows a native chart plots beside the table; returns (first data row, last data row)."""
    from openpyxl.styles import Font

    ws.cell(row=header_row - 1, column=first_col, value="Chart data (the rows the chart plots)").font = Font(
        italic=True)
    data = safe_frame(figure.data)
    for j, col in enumerate(data.columns):
        cell = ws.cell(row=header_row, column=first_col + j, value=str(col))
        cell.font = Font(bold=True)
        ws.column_dimensions[cell.column_letter].width = max(12, min(40, len(str(col)) + 2))
    for i, row in enumerate(data.itertuples(index=False), start=1):
        for j, value in enumerate(row):
            ws.cell(row=header_row + i, column=first_col + j, value=None if pd.isna(value) else value)
    first_width = max([len(str(v)) for v in data.iloc[:, 0]] + [12])
    ws.column_dimensions[ws.cell(row=1, column=first_col).column_letter].width = min(first_width + 2, 60)
    return header_row + 1, header_row + len(data)


def _native_chart(ws, title: str, figure: Figure, first_col: int, header_row: int) -> None:
    """A native Excel bar or line chart of exactly the figure's rows, every category named."""
    from openpyxl.chart import BarChart, LineChart, Reference

    if not figure.kind or figure.data.empty:
        return
    first, last = _chart_block(ws, figure, first_col, header_row)
    chart = LineChart() if figure.kind == "line" else BarChart()
    if figure.kind == "bar":
        from openpyxl.chart.label import DataLabelList

        chart.type = "bar"  # horizontal: long school names stay readable
        chart.x_axis.scaling.orientation = "maxMin"  # first row (the highest) at the top
        chart.x_axis.tickLblSkip = 1  # every bar named: Excel would otherwise skip labels that crowd
        chart.dataLabels = DataLabelList(showVal=True, showSerName=False, showCatName=False, showLegendKey=False)
    chart.title = title[:80]
    chart.x_axis.title = figure.x_title
    chart.y_axis.title = figure.y_title
    chart.x_axis.delete = chart.y_axis.delete = False
    chart.height = max(7.5, 0.55 * (last - first + 1) + 3) if figure.kind == "bar" else 9
    chart.width = 22
    columns = list(figure.data.columns)
    for series in figure.series:
        col = first_col + columns.index(series)
        chart.add_data(Reference(ws, min_col=col, min_row=header_row, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=first_col, min_row=first, max_row=last))
    if len(figure.series) == 1:
        chart.legend = None
    ws.add_chart(chart, ws.cell(row=2, column=first_col + len(columns) + 1).coordinate)


def _notes(pack: Pack, item: PackItem) -> list[str]:
    return [item.filters_text,
            f"Source: School Support & Improvement Dashboard; prepared {pack.date:%d %B %Y}",
            SUPPRESSION_NOTE if pack.public else INTERNAL_NOTE, f"Finding: {item.finding}"]


def workbook_bytes(pack: Pack) -> bytes:
    """A cover sheet and one formatted sheet per view (names, labels, human headers), with native Excel
    charts of exactly the rows each chart is about."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    cover = book.active
    cover.title = "Cover"
    cover.append([safe_cell(pack.title)])
    cover["A1"].font = Font(bold=True, size=16)
    cover.append([f"Prepared {pack.date:%d %B %Y}"])
    cover.append(["Data source: School Support & Improvement Dashboard (SSIF metrics and discipline files)"])
    cover.append([SUPPRESSION_NOTE if pack.public else INTERNAL_NOTE])
    if pack.schools:
        cover.append([safe_cell(f"Schools: {', '.join(pack.schools)}")])
        cover.cell(row=cover.max_row, column=1).alignment = Alignment(wrap_text=False)
    cover.append([])
    cover.append(["Sheet", "View", "Filters", "Finding"])
    for cell in cover[cover.max_row]:
        cell.font = Font(bold=True)
    used: set[str] = {"Cover"}
    for i, item in enumerate(pack.items, start=1):
        name = _sheet_name(i, PACK_VIEWS[item.spec.view].sheet_name, used)
        cover.append([name, safe_cell(item.spec.title), safe_cell(item.filters_text),
                      safe_cell(item.finding)])
        cover.cell(row=cover.max_row, column=4).alignment = Alignment(wrap_text=True, vertical="top")
        ws = book.create_sheet(name)
        frame, header_row = write_sheet(ws, item.sheet, item.spec.title, _notes(pack, item))
        if item.figure is not None and item.figure.kind:
            _native_chart(ws, item.chart.title.text if isinstance(getattr(item.chart, "title", None), alt.TitleParams)
                          else item.spec.title, item.figure, len(frame.columns) + 2, header_row)
    for letter, width in zip("ABCD", (24, 48, 48, 100), strict=True):
        cover.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


SLIDE_W, SLIDE_H = 13.333, 7.5  # inches: 16:9


def _place(shape, left: float, top: float, width: float, height: float) -> None:
    from pptx.util import Inches

    shape.left, shape.top, shape.width, shape.height = Inches(left), Inches(top), Inches(width), Inches(height)


def _picture(slide, png: bytes, alt_text: str, max_w: float, max_h: float, top: float):
    """The chart image fitted into the box, centred, with its alt text (`descr` on the picture's cNvPr)."""
    from PIL import Image
    from pptx.util import Inches

    with Image.open(io.BytesIO(png)) as image:
        ratio = image.width / image.height
    width, height = (max_w, max_w / ratio) if max_w / ratio <= max_h else (max_h * ratio, max_h)
    pic = slide.shapes.add_picture(io.BytesIO(png), Inches((SLIDE_W - width) / 2), Inches(top),
                                   Inches(width), Inches(height))
    pic._element.nvPicPr.cNvPr.set("descr", alt_text)
    pic._element.nvPicPr.cNvPr.set("title", alt_text.split(". ")[0])
    return pic


def deck_bytes(pack: Pack) -> bytes:
    """A 16:9 deck: a title slide naming the scope and its schools, then one slide per view with its chart
    (alt text set) and its finding about the same scope. No interactive hints: the slides are static."""
    from pptx import Presentation
    from pptx.util import Emu, Inches, Pt

    deck = Presentation()
    deck.slide_width, deck.slide_height = Emu(12192000), Emu(6858000)  # 16:9, PowerPoint's own widescreen size
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = pack.title
    _place(first.shapes.title, 0.8, 1.8, SLIDE_W - 1.6, 1.6)
    subtitle = first.placeholders[1]
    _place(subtitle, 0.8, 3.6, SLIDE_W - 1.6, 3.2)
    lines = [f"Data meeting, {pack.date:%d %B %Y}"]
    if pack.schools:
        shown = ", ".join(pack.schools[:12]) + (f" and {len(pack.schools) - 12} more" if len(pack.schools) > 12 else "")
        lines.append(f"Schools: {shown}")
    lines.append(SUPPRESSION_NOTE if pack.public else INTERNAL_NOTE)
    subtitle.text = "\n".join(lines)
    for paragraph in subtitle.text_frame.paragraphs[1:]:
        for run in paragraph.runs:
            run.font.size = Pt(14)
    for item in pack.items:
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = item.spec.title
        _place(slide.shapes.title, 0.5, 0.25, SLIDE_W - 1.0, 0.9)
        slide.shapes.title.text_frame.paragraphs[0].runs[0].font.size = Pt(28)
        if item.chart is not None:
            _picture(slide, chart_bytes(item.chart, "png", scale=2), item.alt_text, SLIDE_W - 1.0, 4.75, 1.2)
        box = slide.shapes.add_textbox(Inches(0.6), Inches(6.05), Inches(SLIDE_W - 1.2), Inches(1.2)).text_frame
        box.word_wrap = True
        box.text = item.finding
        box.paragraphs[0].runs[0].font.size = Pt(15)
        if pack.public:
            note = box.add_paragraph()
            note.text = SUPPRESSION_NOTE
            note.runs[0].font.size = Pt(10)
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def zip_bytes(pack: Pack, workbook: bytes | None = None, deck: bytes | None = None) -> bytes:
    """The workbook, the deck, every chart as PNG and SVG, and every table as CSV (as in the workbook).

    Pass the workbook and deck when they are already written (the /meeting page writes all three).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{pack.stem}.xlsx", workbook if workbook is not None else workbook_bytes(pack))
        archive.writestr(f"{pack.stem}.pptx", deck if deck is not None else deck_bytes(pack))
        for i, item in enumerate(pack.items, start=1):
            stem = f"{i:02d}-{item.spec.view}"
            archive.writestr(f"tables/{stem}.csv", safe_frame(item.sheet).to_csv(index=False))
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
    from analytics.data import loads
    from analytics.outputs.views import ViewError

    schools = loads.load_schools(engine)
    specs = standard_specs(args.cluster, args.school, args.year, args.metric or "read_proficient", schools,
                           context(engine, {}).metric_names)
    specs += learning_specs(engine)

    def progress(i: int, total: int, title: str) -> None:
        print(f"[{i}/{total}] {title}", file=sys.stderr)

    try:
        pack = build_pack(engine, specs, pack_title(schools, args.cluster, args.school, args.year), public=args.public,
                          progress=progress)
    except ViewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.output)
    path.write_bytes(WRITERS[path.suffix.lower()](pack))
    print(f"wrote {path}", file=sys.stderr)
    return 0
