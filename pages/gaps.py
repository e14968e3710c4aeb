"""`/gaps`: growth gaps, the status-and-change grid and gap trends (URL: level, cluster, metric, year)."""

import numpy as np
import pandas as pd
import streamlit as st

from analytics.access.privacy import SUPPRESSED
from analytics.data.catalog import SCHOOL_LEVELS, group_label
from analytics.data.prepare import gaps_opening_metric
from analytics.outputs import charts_equity
from analytics.outputs.labels import REFERENCE_NAMES, counted, trend_text
from analytics.stats.gaps import (
    CLOSING,
    CLOSING_REF,
    MIN_CELL,
    REFERENCES,
    REVERSED,
    TOO_SMALL,
    WIDENING,
    gap_family,
)
from pages import ui

st.title("Growth gaps")
ui.require_data("metrics", "discipline")
schools = ui.schools()
years, metrics = ui.years(), ui.metric_ids()
if not years or not metrics:
    st.info("No data yet. Import metrics on the Data page.")
    st.stop()



@ui.drawn
def gap_options(version: int) -> tuple[list[str], list[str]]:
    """The levels and clusters the district's schools have (filter options)."""
    present_levels = set(schools["level"])
    return (["all", *[lv for lv in SCHOOL_LEVELS if lv in present_levels]],
            ["all", *sorted(schools["cluster"].dropna().unique())])


cols = st.columns([1, 1, 2, 2])
levels, clusters = gap_options(ui.import_version())
level = ui.url_choice("Level", "level", levels, "all", container=cols[0],
                      format_func=lambda v: "All levels" if v == "all" else SCHOOL_LEVELS.get(v, v))
year = int(ui.url_choice("School year", "year", [str(y) for y in years], str(years[-1]), container=cols[1],
                         format_func=lambda y: f"{int(y) - 1}-{str(y)[-2:]}"))
default_metric = gaps_opening_metric(metrics)
metric = ui.url_choice("Metric", "metric", metrics, default_metric, format_func=ui.metric_label, container=cols[2])
cluster = ui.url_choice("Cluster", "cluster", clusters, "all", container=cols[3],
                        format_func=lambda c: "Whole district" if c == "all" else c)
reference = ui.url_choice("Compare each group with", "reference", list(REFERENCES), "others",
                          format_func=REFERENCE_NAMES.get)

scope = schools
if level != "all":
    scope = scope[scope["level"] == level]
if cluster != "all":
    scope = scope[scope["cluster"] == cluster]
label = ui.metric_label(metric)
catalog = ui.metric_catalog()
higher = {m: bool(v) for m, v in catalog["higher_is_better"].items()}


WITHIN_NOT_SHARED = ("the within-school gap is computed from every school's own counts, small groups included, "
                     "which a shared link does not release")


def released_views(gaps, trend, grid):
    """Shared views: the gap rows, pooled trend and status grid as the district's release allows.

    Gaps and statuses are masked like the public export (numbers behind hidden or coded cells become
    missing, and the labels are recomputed over the released changes). A pooled trend is a cell of the
    release only for the whole district or one cluster (a level is a new sum, not released); its
    within-school gap is computed from every school's cells, hidden ones included, so it is not shown."""
    masked = ui.public_view(gaps, "gaps")
    numeric = ["value", "reference_value", "gap", "gap_change", "p_value", "q_value", "numerator", "denominator",
               "ref_num", "ref_den", "previous_value", "previous_gap"]
    gaps = masked.assign(**{c: pd.to_numeric(masked[c], errors="coerce") for c in numeric if c in masked})
    status = ui.public_view(grid.assign(school_year=year), "status-change")
    levels_hidden = status["status_level"] == SUPPRESSED
    change_hidden = status["change_level"] == SUPPRESSED
    grid = grid.assign(status=pd.to_numeric(status["status"], errors="coerce"),
                       change=pd.to_numeric(status["change"], errors="coerce"),
                       status_level=status["status_level"].where(~levels_hidden, ""),
                       change_level=status["change_level"].where(~(levels_hidden | change_hidden), ""),
                       color=status["color"].where(~(levels_hidden | change_hidden), ""))
    if level != "all" or trend.empty:
        return gaps, trend.iloc[0:0], grid
    unit = "district" if cluster == "all" else f"cluster:{cluster}"
    n = len(trend)
    keys = ([unit] * n, trend["school_year"].tolist(), [metric] * n)
    exact = ui.exact_cells(*keys, trend["student_group"].tolist()) & ui.exact_cells(*keys, ["ALL"] * n)
    trend = trend[exact].assign(simpson=False)
    return gaps, trend.assign(**{c: np.nan for c in ("mh_gap", "mh_low", "mh_high") if c in trend}), grid


# The status grid is drawn first, then the year's gaps are labelled (one family of tests over the page) and the
# pooled trend over every year is summed (by the database, on a thread of its own from the start) in the same run;
# the findings, which count the labels and name a Simpson's paradox in the trend, are filled in above them.
ui.gap_trend_ahead(metric, level, cluster)
grid = ui.gap_grid(metric, year, level, cluster)
gaps = limits = None
trend = None
if ui.is_public():  # a shared view's gaps and trend are released with the grid, before anything is drawn
    gaps, grid, limits = ui.gap_year_views(metric, year, reference, level, cluster)
    gaps, trend, grid = released_views(gaps, ui.gap_trend(metric, level, cluster), grid)
names = ui.school_names()
scope_text = f"{'the district' if cluster == 'all' else cluster}{'' if level == 'all' else f' ({level})'}"


# --- findings ---------------------------------------------------------------------------------------
@ui.cached
def findings(version: int, metric: str, year: int, reference: str, level: str, cluster: str, share: str | None):
    """The findings' lines and the family of gap tests they count, once per data version and view."""
    family = gap_family(gaps)
    counts = family.counts
    lines = [f"Across {len(scope)} schools in {scope_text}, {family.n_tests:,} school student groups could be tested "
             f"for a change in their {label.lower()} gap from {year - 2}-{str(year - 1)[-2:]} to "
             f"{year - 1}-{str(year)[-2:]}: {counts[CLOSING]} closing, {counts[CLOSING_REF]} closing only because the "
             f"reference did worse, {counts[WIDENING]} widening, {counts[REVERSED]} reversed (z-test for the change in "
             "the gap, then a false-discovery-rate correction across this page).",
             f"{family.n_labelled:,} labelled, about {family.expected_by_chance:.1f} expected by chance alone "
             f"(Benjamini-Hochberg, q < {family.q:.2f}: up to {family.q:.0%} of the labels may be false)."]
    small = int((gaps["trend"] == TOO_SMALL).sum())
    if small:
        lines.append(f"{small:,} school groups were too small to test (a count under {MIN_CELL} in a cell).")
    widest = gaps.dropna(subset=["gap"])
    widest = widest[(widest["denominator"] >= 30) & (widest["ref_den"].isna() | (widest["ref_den"] >= 30))]
    if ui.is_public():  # a coded rate (<= 5% or >= 95%) is never printed exactly
        widest = widest[widest["value"].between(5, 95, inclusive="neither")
                        & widest["reference_value"].between(5, 95, inclusive="neither")]
    if not widest.empty:
        sign = 1 if higher.get(metric, True) else -1
        worst = widest.assign(s=widest["gap"] * sign).sort_values("s").iloc[0]
        lines.append(f"Largest gap among groups of 30 or more students: {group_label(worst['student_group'])} at "
                     f"{names.get(worst['school_id'])}, {worst['value']:.1f}% vs {worst['reference_value']:.1f}% "
                     f"({worst['gap']:+.1f} points, n = {worst['denominator']:,.0f}).")
    this_year = trend[trend["school_year"] == year]
    for _, row in this_year[this_year["simpson"]].iterrows():
        lines.append(f"Simpson's paradox for {group_label(row['student_group'])}: pooled over the schools the gap is "
                     f"{row['gap']:+.1f} points, but within the same school it is {row['mh_gap']:+.1f} points "
                     "(Mantel-Haenszel): the pooled figure reflects which schools the students attend.")
    return family, lines, this_year


st.subheader("Findings")
# Filled below, once the trend is summed; until then it says so (a rerun never shows the last view's findings).
findings_slot = st.empty()
findings_slot.caption("Working out the findings…")

# --- status grid --------------------------------------------------------------------------------------
@ui.drawn
def grid_view(version: int, metric: str, year: int, reference: str, level: str, cluster: str, share: str | None):
    """The status-and-change chart, its cells as people read them, its summary, the rows it downloads and the
    count of each colour."""
    grid_chart = ui.finished(charts_equity.status_grid_clickable, grid,
                             f"{label}: status and change, {ui.year_label(year)}",
                             key=(version, metric, year, reference, level, cluster, share))
    rated = grid[(grid["status_level"] != "") & (grid["change_level"] != "")]
    cells = rated.assign(colour=rated["color"].replace("", "No colour")).groupby(
        ["status_level", "change_level", "colour"], as_index=False).size()
    by_colour = cells.groupby("colour")["size"].sum()
    grid_summary = (f"{len(rated):,} school student groups rated for {label.lower()} in scope: "
                    + ", ".join(f"{c} {by_colour[c]}" for c in ("Red", "Orange", "Yellow", "Green", "Blue",
                                                                  "No colour") if c in by_colour) + ".")
    return grid_chart, cells.rename(columns={
        "status_level": "Status this year", "change_level": "Change from last year", "colour": "Colour",
        "size": "School groups"}), grid_summary, grid.drop(columns="denominator")


@ui.drawn
def colour_counts(version: int, metric: str, year: int, reference: str, level: str, cluster: str,
                  share: str | None) -> pd.DataFrame:
    """School groups of each colour in scope."""
    colours = grid[grid["color"] != ""]["color"].value_counts()
    return colours.rename_axis("Colour").reset_index(name="School groups")


left, right = st.columns([3, 2])
with left:
    if grid.empty or (grid["status_level"] == "").all() or (grid["color"] == "").all():
        limits = ui.gap_year_views(metric, year, reference, level, cluster)[2]
        st.info("Nothing to show: see the findings above." if limits else f"No school group has a colour for "
                f"{label}: no status-and-change cut points are set for it, or every group has fewer than 30 students.")
        picked = []
    else:
        grid_chart, cells, grid_summary, downloaded = grid_view(ui.import_version(), metric, year, reference, level,
                                                                cluster, ui.share_token())
        ui.download_menu(f"status-change-{metric}-{year}", downloaded, grid_chart)
        event = ui.chart(grid_chart, cells, grid_summary, key="status_grid", on_select="rerun",
            public_safe=True)  # shared views: the grid holds released statuses only (released_views)
        picked = (event.selection.get("cell") or []) if event else []
with right:
    if picked:
        cell = picked[0]
        members = grid[(grid["status_level"] == cell["status_level"]) & (grid["change_level"] == cell["change_level"])]
        st.markdown(f"**{cell['status_level']} status, {cell['change_level'].lower()}** — "
                    f"{counted(len(members), 'group')}")
        for _, row in members.head(40).iterrows():
            ui.link(f"{names.get(row['school_id'], row['school_id'])} · {group_label(row['student_group'])} · "
                    f"{row['status']:.1f}%", "pages/school.py", school=row["school_id"], year=year, metric=metric,
                    group=row["student_group"])
    elif not grid.empty and (grid["color"] != "").any():
        st.markdown("**Colours in scope**")
        st.dataframe(ui.arrow_ready(colour_counts(ui.import_version(), metric, year, reference, level, cluster,
                                                  ui.share_token())), hide_index=True)
        st.caption("Cut points per metric and level are in the settings; groups under 30 students get no colour.")

if gaps is None:
    gaps, _, limits = ui.gap_year_views(metric, year, reference, level, cluster)
if trend is None:
    trend = ui.gap_trend(metric, level, cluster)
family, lines, this_year = findings(ui.import_version(), metric, year, reference, level, cluster, ui.share_token())
with findings_slot.container():
    if family.n_tests == 0 and limits:  # say why nothing could be tested rather than count zeros
        lines = [f"Nothing could be tested for {label.lower()} in {ui.year_label(year)} ({scope_text}):", *limits]
        st.markdown(lines[0] + "\n" + "\n".join(f"- {line}" for line in lines[1:]))
    else:
        st.markdown("\n".join(f"- {line}" for line in lines))

# --- gap trends ---------------------------------------------------------------------------------------
@ui.drawn
def band_view(version: int, metric: str, year: int, reference: str, level: str, cluster: str, share: str | None,
              chosen: tuple[str, ...]):
    """The chosen groups' pooled gap trend (chart, rows as people read them, summary); None with one year."""
    shown = trend[trend["student_group"].isin(chosen)]
    if shown["school_year"].nunique() <= 1:
        return None
    latest = shown[shown["school_year"] == shown["school_year"].max()].sort_values("gap")
    band_summary = (f"Pooled gaps to all other students, {ui.year_label(shown['school_year'].max())}: "
                    + "; ".join(f"{group_label(g)} {v:+.1f} points" for g, v in
                                zip(latest["student_group"], latest["gap"], strict=True)) + ".")
    chart = ui.finished(charts_equity.gap_band_trend, shown, label, higher.get(metric, True),
                        key=(version, metric, year, reference, level, cluster, share, chosen))
    rows = ui.filled(shown.assign(group=shown["student_group"].map(group_label))[
        ["group", "school_year", "gap", "gap_low", "gap_high", "n"]],
        {"gap": "{:+.1f}", "gap_low": "{:+.1f}", "gap_high": "{:+.1f}", "n": "{:,.0f}"}).rename(columns={
            "group": "Group", "school_year": "School year (ending)", "gap": "Gap (points)",
            "gap_low": "95% CI low", "gap_high": "95% CI high", "n": "Students in group"})
    return chart, rows, band_summary


@ui.drawn
def within_view(version: int, metric: str, year: int, reference: str, level: str, cluster: str, share: str | None):
    """Pooled and within-school gaps of the year as listed (None when there are none), with column settings."""
    within = this_year.assign(group=this_year["student_group"].map(group_label),
                              note=this_year["simpson"].map({True: "signs differ: Simpson's paradox", False: ""}))
    if within.empty:
        return None
    gap_cols = ("gap", "gap_low", "gap_high", "mh_gap", "mh_low", "mh_high")
    # Short headers (their meaning in each one's help) so all ten columns fit the page, the last included.
    within_config = {"group": st.column_config.TextColumn("Group"),
                     "n": st.column_config.NumberColumn("Students (n)", format="localized",
                                                        help="Students in the group, over the schools pooled."),
                     "note": st.column_config.TextColumn("Note")} | ui.text_columns({
        "gap": "Pooled gap (pts)", "mh_gap": "Within-school gap (pts)", "n_schools": "Schools"}) | {
        col: st.column_config.TextColumn(label, alignment="right", help=f"95% interval of the {gap} gap, {end} end.")
        for col, label, gap, end in (("gap_low", "Low", "pooled", "low"), ("gap_high", "High", "pooled", "high"),
                                     ("mh_low", "Low ", "within-school", "low"),
                                     ("mh_high", "High ", "within-school", "high"))}
    if share is not None:  # released_views leaves them out: the dash says why where it is read
        for col in ("mh_gap", "mh_low", "mh_high"):
            within_config[col] = st.column_config.TextColumn(within_config[col]["label"], alignment="right",
                                                             help=f"Not shown on shared links: {WITHIN_NOT_SHARED}.")
    return ui.public_table(
        ui.filled(within[["group", *gap_cols, "n_schools", "n", "note"]],
                  dict.fromkeys(gap_cols, "{:+.1f}") | {"n_schools": "{:.0f}"}),
        within_config, n_col="n", derived_cols=list(gap_cols))


st.subheader("Gap trends")
groups_present = [g for g in trend["student_group"].unique()]
default_groups = [g for g in ("BL", "HI", "FARMS", "EML", "SWD") if g in groups_present]
chosen = st.multiselect("Groups", groups_present, default=default_groups or groups_present[:4],
                        format_func=group_label, key="gap_groups")
band = band_view(ui.import_version(), metric, year, reference, level, cluster, ui.share_token(), tuple(chosen))
if band is not None:
    ui.chart(*band)
else:
    st.caption("Nothing to show: see the findings above." if limits else
               "Only one school year with counts: no trend to show.")
within = within_view(ui.import_version(), metric, year, reference, level, cluster, ui.share_token())
if within is not None:
    st.markdown(f"**Pooled and within-school gaps, {year - 1}-{str(year)[-2:]}** (each group vs all other students)")
    within_shown, within_config = within
    if ui.is_public():
        st.caption(f"Shared view: the within-school columns show – because {WITHIN_NOT_SHARED}.")
    st.dataframe(ui.arrow_ready(within_shown), hide_index=True, width="stretch", column_config=within_config)
    st.caption("Pooled: all the group's students in scope against all other students in scope. Within-school: "
               "the Mantel-Haenszel risk difference with schools as strata (Sato's variance), comparing students "
               "of the same school. When the two signs differ, the pooled gap comes from differences between "
               "schools, not within them.")

# --- badges table -------------------------------------------------------------------------------------
st.subheader("Gaps by school and group")


@ui.drawn
def badges_table(version: int, metric: str, year: int, reference: str, level: str, cluster: str, share: str | None):
    """The table of gaps by school and group as shown (labels in words, groups of 10 or more, privacy rules),
    as the Arrow table `st.dataframe` sends: names and labels are made for the rows shown only, and the
    text frame is not kept beside its Arrow table (at 10,000 schools a hundred thousand rows of text)."""
    shown = gaps[gaps["denominator"].fillna(0) >= 10]
    table = shown.assign(school=shown["school_id"].map(names), group=shown["student_group"].map(group_label),
                         verdict=[trend_text(t, p, g) for t, p, g in
                                  zip(shown["trend"], shown["previous_year"], shown["gap"], strict=True)])
    if not higher.get(metric, True):  # for a lower-is-better rate the reference "fell back" by rising
        table["verdict"] = table["verdict"].replace(CLOSING_REF, "closing because the reference rose (did worse)")
    table = table.sort_values("gap", ascending=higher.get(metric, True))
    if ui.is_public():  # the export's privacy rules: small groups, coded rates and their complements hidden
        table = ui.public_view(table, "gaps")
        table["verdict"] = table["verdict"].where(table["trend"] != SUPPRESSED, SUPPRESSED)
    numbers = {"value": "{:.1f}", "reference_value": "{:.1f}", "gap": "{:+.1f}", "gap_change": "{:+.1f}",
               "p_value": "{:.3f}", "q_value": "{:.3f}"}
    return ui.arrow_ready(ui.filled(table[["school", "group", "value", "reference_value", "gap", "gap_change",
                                           "verdict", "p_value", "q_value"]], numbers))


# Words, not coloured emoji (which some fonts draw as empty boxes); the reason when there is no label.
table = badges_table(ui.import_version(), metric, year, reference, level, cluster, ui.share_token())
st.dataframe(
    table,
    hide_index=True, width="stretch", height=360,
    column_config={"school": st.column_config.TextColumn("School"), "group": st.column_config.TextColumn("Group"),
                   "verdict": st.column_config.TextColumn("Trend")} | ui.text_columns({
        "value": "Group (%)", "reference_value": "Reference (%)", "gap": "Gap (pts)",
        "gap_change": "Change since last year (pts)", "p_value": "p (z-test)", "q_value": "q (FDR)"}),
)
st.caption("The change in a gap is tested against the year just before (a missing year breaks the series) with a "
           "z-test for the difference in differences of two proportions. Because this page runs many tests, "
           "p-values become Benjamini-Hochberg q-values across the page, and a trend is named only when "
           f"q < {family.q:.2f}. Closing: the gap narrowed and the group itself improved. Reversed: the gap changed "
           "sign. Groups under 10 students are not shown.")
if not table.num_rows:
    st.info("Nothing to show: see the findings above." if limits else
            "No school group in scope has 10 or more students with counts for this metric and year.")
