"""`/gaps`: growth gaps, the status-and-change grid and gap trends (URL: level, cluster, metric, year)."""

import streamlit as st

from analytics.data.catalog import SCHOOL_LEVELS, group_label
from analytics.outputs import charts_equity
from analytics.stats.gaps import (
    CLOSING,
    CLOSING_REF,
    MIN_CELL,
    NO_CHANGE,
    NO_COUNTS,
    REFERENCES,
    REVERSED,
    TOO_SMALL,
    WIDENING,
    gap_family,
    gap_table,
    label_gaps,
    pooled_gap_trend,
)
from analytics.stats.rates import add_rate_columns
from analytics.stats.status_change import status_change
from pages import ui

st.title("Growth gaps")
schools = ui.schools()
years, metrics = ui.years(), ui.metric_ids()
if not years or not metrics:
    st.info("No data yet. Import metrics on the Data page.")
    st.stop()

cols = st.columns([1, 1, 2, 2])
levels = ["all", *[lv for lv in SCHOOL_LEVELS if lv in set(schools["level"])]]
level = ui.url_choice("Level", "level", levels, "all", container=cols[0],
                      format_func=lambda v: "All levels" if v == "all" else SCHOOL_LEVELS.get(v, v))
year = int(ui.url_choice("School year", "year", [str(y) for y in years], str(years[-1]), container=cols[1],
                         format_func=lambda y: f"{int(y) - 1}-{str(y)[-2:]}"))
default_metric = "math_growth" if "math_growth" in metrics else metrics[0]
metric = ui.url_choice("Metric", "metric", metrics, default_metric, format_func=ui.metric_label, container=cols[2])
clusters = ["all", *sorted(schools["cluster"].dropna().unique())]
cluster = ui.url_choice("Cluster", "cluster", clusters, "all", container=cols[3],
                        format_func=lambda c: "Whole district" if c == "all" else c)
reference_names = {"others": "All other students in the school", "district_all": "District, all students",
                   "best_group": "Best-performing group in the school", "target": "The school's target"}
reference = st.radio("Compare each group with", REFERENCES, format_func=reference_names.get, horizontal=True,
                     key="gap_reference")

scope = schools
if level != "all":
    scope = scope[scope["level"] == level]
if cluster != "all":
    scope = scope[scope["cluster"] == cluster]
label = ui.metric_label(metric)
catalog = ui.metric_catalog()
higher = {m: bool(v) for m, v in catalog["higher_is_better"].items()}


@ui.cached
def gap_views(version: int, metric: str, year: int, reference: str, school_ids: tuple[str, ...]):
    """Labelled gaps for the year (one BH family), pooled gap trend and status-and-change rows in scope."""
    rows = ui.metric_rows(metric)
    everyone = rows if reference == "district_all" else rows[rows["school_id"].isin(school_ids)]
    gaps = gap_table(everyone, reference, higher, reference_year=year, label=False)
    gaps = label_gaps(gaps[(gaps["school_year"] == year) & gaps["school_id"].isin(school_ids)], higher)
    in_scope = rows[rows["school_id"].isin(school_ids)]
    trend = pooled_gap_trend(in_scope)
    current = add_rate_columns(in_scope[in_scope["school_year"] == year]) if len(in_scope) else in_scope
    previous = in_scope[in_scope["school_year"] == year - 1]
    grid = status_change(current, previous, dict(zip(schools["school_id"], schools["level"], strict=True)), higher)
    return gaps, trend, grid


gaps, trend, grid = gap_views(ui.data_version(), metric, year, reference, tuple(scope["school_id"]))
names = schools.set_index("school_id")["school_name"]
family = gap_family(gaps)

# --- findings ---------------------------------------------------------------------------------------
st.subheader("Findings")
scope_text = f"{'the district' if cluster == 'all' else cluster}{'' if level == 'all' else f' ({level})'}"
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
st.markdown("\n".join(f"- {line}" for line in lines))

# --- status grid --------------------------------------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    if grid.empty or (grid["status_level"] == "").all():
        st.info(f"No status-and-change cut points or no previous year for {label}.")
        picked = []
    else:
        grid_chart = charts_equity.status_grid_clickable(grid, f"{label}: status and change, {year}")
        ui.download_menu(f"status-change-{metric}-{year}", grid.drop(columns="denominator"), grid_chart)
        event = st.altair_chart(grid_chart, on_select="rerun", key="status_grid", width="stretch")
        picked = (event.selection.get("cell") or []) if event else []
with right:
    if picked:
        cell = picked[0]
        members = grid[(grid["status_level"] == cell["status_level"]) & (grid["change_level"] == cell["change_level"])]
        st.markdown(f"**{cell['status_level']} status, {cell['change_level'].lower()}** — {len(members)} group(s)")
        for _, row in members.head(40).iterrows():
            ui.link(f"{names.get(row['school_id'], row['school_id'])} · {group_label(row['student_group'])} · "
                    f"{row['status']:.1f}%", "pages/school.py", school=row["school_id"], year=year, metric=metric,
                    group=row["student_group"])
    else:
        colours = grid[grid["color"] != ""]["color"].value_counts()
        st.markdown("**Colours in scope**")
        st.dataframe(colours.rename_axis("Colour").reset_index(name="School groups"), hide_index=True)
        st.caption("Cut points per metric and level are in the settings; groups under 30 students get no colour.")

# --- gap trends ---------------------------------------------------------------------------------------
st.subheader("Gap trends")
groups_present = [g for g in trend["student_group"].unique()]
default_groups = [g for g in ("BL", "HI", "FARMS", "EML", "SWD") if g in groups_present]
chosen = st.multiselect("Groups", groups_present, default=default_groups or groups_present[:4],
                        format_func=group_label, key="gap_groups")
shown = trend[trend["student_group"].isin(chosen)]
if shown["school_year"].nunique() > 1:
    st.altair_chart(charts_equity.gap_band_trend(shown, label), width="stretch")
else:
    st.caption("Only one school year with counts: no trend to show.")
within = this_year.assign(group=this_year["student_group"].map(group_label),
                          note=this_year["simpson"].map({True: "signs differ: Simpson's paradox", False: ""}))
if not within.empty:
    st.markdown(f"**Pooled and within-school gaps, {year - 1}-{str(year)[-2:]}** (each group vs all other students)")
    st.dataframe(
        within[["group", "gap", "gap_low", "gap_high", "mh_gap", "mh_low", "mh_high", "n_schools", "note"]],
        hide_index=True, width="stretch",
        column_config={
            "group": st.column_config.TextColumn("Group"),
            "gap": st.column_config.NumberColumn("Pooled gap (pts)", format="%+.1f"),
            "gap_low": st.column_config.NumberColumn("95% CI low", format="%+.1f"),
            "gap_high": st.column_config.NumberColumn("95% CI high", format="%+.1f"),
            "mh_gap": st.column_config.NumberColumn("Within-school gap (pts)", format="%+.1f"),
            "mh_low": st.column_config.NumberColumn("95% CI low ", format="%+.1f"),
            "mh_high": st.column_config.NumberColumn("95% CI high ", format="%+.1f"),
            "n_schools": st.column_config.NumberColumn("Schools"),
            "note": st.column_config.TextColumn("Note"),
        })
    st.caption("Pooled: all the group's students in scope against all other students in scope. Within-school: "
               "the Mantel-Haenszel risk difference with schools as strata (Sato's variance), comparing students "
               "of the same school. When the two signs differ, the pooled gap comes from differences between "
               "schools, not within them.")

# --- badges table -------------------------------------------------------------------------------------
st.subheader("Gaps by school and group")
badge = {CLOSING: "🟢 closing", CLOSING_REF: "🟡 closing because the reference did worse",
         WIDENING: "🔴 widening", REVERSED: "🟣 reversed", NO_CHANGE: "⚪ no significant change",
         TOO_SMALL: "too small to test", NO_COUNTS: "no counts to test", "": "no previous year"}
verdict = gaps["trend"].map(badge).where((gaps["trend"] != "") | gaps["previous_year"].isna(), "no gap to compare")
table = gaps.assign(school=gaps["school_id"].map(names), group=gaps["student_group"].map(group_label), verdict=verdict)
table = table[table["denominator"].fillna(0) >= 10]
st.dataframe(
    table[["school", "group", "value", "reference_value", "gap", "gap_change", "verdict", "p_value", "q_value"]]
    .sort_values("gap", ascending=higher.get(metric, True)),
    hide_index=True, width="stretch", height=360,
    column_config={
        "school": st.column_config.TextColumn("School"),
        "group": st.column_config.TextColumn("Group"),
        "value": st.column_config.NumberColumn("Group (%)", format="%.1f"),
        "reference_value": st.column_config.NumberColumn("Reference (%)", format="%.1f"),
        "gap": st.column_config.NumberColumn("Gap (pts)", format="%+.1f"),
        "gap_change": st.column_config.NumberColumn("Change since last year (pts)", format="%+.1f"),
        "p_value": st.column_config.NumberColumn("p (z-test)", format="%.3f"),
        "q_value": st.column_config.NumberColumn("q (FDR)", format="%.3f"),
        "verdict": st.column_config.TextColumn("Trend"),
    },
)
st.caption("The change in a gap is tested against the year just before (a missing year breaks the series) with a "
           "z-test for the difference in differences of two proportions. Because this page runs many tests, "
           "p-values become Benjamini-Hochberg q-values across the page, and a trend is named only when "
           f"q < {family.q:.2f}. Closing: the gap narrowed and the group itself improved. Reversed: the gap changed "
           "sign. Groups under 10 students are not shown.")
if table.empty:
    st.info("No school group in scope has 10 or more students with counts for this metric and year.")
