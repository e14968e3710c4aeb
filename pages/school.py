"""`/school`: one school's SSIF profile (URL: school, year)."""

import numpy as np
import pandas as pd
import streamlit as st

from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.outputs import charts_district as charts
from analytics.outputs.findings import gap_finding, nothing_found_finding, rate_change_finding
from analytics.stats.gaps import FDR_Q, bh_q_values
from pages import ui

ui.require_data("metrics", "discipline")
school_id = st.query_params.get("school")
if not school_id:
    ui.breadcrumb(("District", "pages/overview.py", {}), ("School", None, {}))
    ui.not_found("No school chosen: open a school from a cluster or the map.")


@ui.drawn
def school_header(version: int, school_id: str):
    """The school's row, its title (with its cluster where names repeat) and its facts line; None when the
    district has no such school."""
    schools = ui.schools()
    if school_id not in set(schools["school_id"]):
        return None
    info = schools.set_index("school_id").loc[school_id]
    facts = [f"School {school_id}", f"{info['level']}", f"{info['cluster']} cluster"]
    if np.isfinite(info["enrollment"]):
        facts.append(f"{info['enrollment']:,.0f} students")
    if info.get("title1") is True:
        facts.append("Title I")
    facts.append(f"restorative practices since {int(info['rp_start_year']) - 1}-{str(int(info['rp_start_year']))[-2:]}"
                 if np.isfinite(info["rp_start_year"]) else "no restorative-practices start recorded")
    return info, ui.school_names().get(school_id, info["school_name"]), " · ".join(facts)


header = school_header(ui.data_version(), school_id)
if header is None:
    ui.breadcrumb(("District", "pages/overview.py", {}), ("School not found", None, {}))
    ui.not_found(f"School “{school_id}” was not found.")

info, title, facts = header
crumbs = st.container()
st.title(title)
st.caption(facts)
ui.link("School Performance Plan: goals, progress and walkthroughs", "pages/plans.py", icon=":material/flag:",
        school=school_id)

rows = ui.school_metrics(school_id)


@ui.drawn
def school_years_and_groups(version: int, school_id: str) -> tuple[list[int], set[str]]:
    """The school years and student groups the school has rows for."""
    return sorted(rows["school_year"].unique().tolist()), set(rows["student_group"])


years, present = school_years_and_groups(ui.data_version(), school_id)
if not years:
    st.info("No metric data for this school yet.")
    st.stop()
year = int(ui.url_choice("School year", "year", [str(y) for y in years], str(years[-1]),
                         format_func=lambda y: f"{int(y) - 1}-{str(y)[-2:]}"))
catalog = ui.metric_catalog()


@ui.drawn
def profile_for(version: int, school_id: str, year: int):
    """The school's profile for a year against the district (cached per data version; read-only): the latest
    year's is a slice of every school's, made ahead after an import."""
    return ui.school_profile_of(school_id, year)


profile = profile_for(ui.data_version(), school_id, year)


@ui.drawn
def metrics_of_profile(version: int, school_id: str, year: int) -> list[str]:
    """The metrics in the school's profile, in its order (the trend chart's choices)."""
    return list(profile["metric"].unique())


def better(metric: str) -> bool:
    return bool(catalog.loc[metric, "higher_is_better"]) if metric in catalog.index else True


# --- findings --------------------------------------------------------------------------------------
@ui.cached
def findings(version: int, school_id: str, year: int, share: str | None) -> list[str]:
    """The findings' lines, once per data version, school, year and shared link (the privacy rules)."""
    previous = [y for y in years if y < year]
    lines = []
    n_changes_tested = 0
    all_rows = rows[rows["student_group"] == "ALL"]
    ends = all_rows[all_rows["school_year"].isin([year, *previous[-1:]])]
    counts_of: dict[tuple[str, int], tuple[float, float]] = {}  # (metric, year) -> its first ALL row's counts
    for key in zip(ends["metric"], ends["school_year"], ends["numerator"], ends["denominator"], strict=True):
        counts_of.setdefault((key[0], int(key[1])), (key[2], key[3]))
    for metric in profile["metric"].unique():
        if not previous:
            break
        cur, prev = counts_of.get((metric, year)), counts_of.get((metric, previous[-1]))
        # A shared view states a change only when both years' rates are released exactly (privacy rules).
        released = ui.exact_cells([school_id] * 2, [previous[-1], year], [metric] * 2, ["ALL"] * 2).all()
        if cur is not None and prev is not None and released:
            counts = [*prev, *cur]
            n_changes_tested += all(np.isfinite(counts)) and min(counts[1], counts[3]) >= 10
            line = rate_change_finding(ui.metric_label(metric), *counts, better(metric))
            if "a significant change" in line:
                lines.append(line)
    # Every group x metric gap of the school is one family of tests: BH q-values, a gap is named when q < 0.10.
    gaps = profile[(profile["student_group"] != "ALL") & (profile["denominator"] >= 10)]
    gap_cells = ([school_id] * len(gaps), [year] * len(gaps), gaps["metric"].tolist())
    gaps = gaps[ui.exact_cells(*gap_cells, gaps["student_group"].tolist())
                & ui.exact_cells(*gap_cells, ["ALL"] * len(gaps))]
    gaps = gaps.assign(q_value=bh_q_values(gaps["p_value"]))
    n_gap_tests = int(gaps["q_value"].notna().sum())
    gaps = gaps[gaps["q_value"] < FDR_Q]
    gaps = gaps.assign(size=gaps["gap"].abs()).sort_values("size", ascending=False).head(3)
    for _, g in gaps.iterrows():
        lines.append(gap_finding(group_label(g["student_group"]), ui.metric_label(g["metric"]), g["value"],
                                 g["others_value"], g["p_value"], g["denominator"], q_value=g["q_value"]))
    if len(gaps):
        lines.append(f"Gaps are tested against all other students of the school ({n_gap_tests} tests on this page; "
                     f"named only when the false-discovery-rate q < {FDR_Q:.2f}); the three largest are listed.")
    if lines:
        return [f"- {line}" for line in lines]
    value_only_rows = profile["value"].notna() & profile["denominator"].isna()
    return ["- " + nothing_found_finding(int(n_changes_tested), n_gap_tests, bool(previous),
                                         int(value_only_rows.sum()))]


st.subheader("Findings")
st.markdown("\n".join(findings(ui.data_version(), school_id, year, ui.share_token())))

# --- profile table -----------------------------------------------------------------------------------
@ui.drawn
def profile_table(version: int, school_id: str, year: int, share: str | None):
    """The profile as shown (labels, hidden small groups, privacy rules) and as downloaded, with its column
    settings: once per data version, school, year and shared link."""
    show = profile.copy()
    show["Metric"] = show["metric"].map(ui.metric_label)
    show["Group"] = show["student_group"].map(group_label)
    small = show["denominator"].fillna(0) < 10
    hide = small & show["denominator"].notna()
    for col in ("value", "ci_low", "ci_high", "vs_district", "gap"):
        show[col] = show[col].where(~hide)
    show["School (%)"] = show["value"]
    show["note"] = np.where(small & show["denominator"].notna(), "n < 10: not shown",
                            np.where(show["value"].notna() & show["denominator"].isna(),
                                     "value only (no counts): not tested; district = median of school values", ""))
    show["group_order"] = show["student_group"].map({g: i for i, g in enumerate(STUDENT_GROUPS)})
    show = show.sort_values(["metric", "group_order"])
    profile_config = {
        "ci_low": st.column_config.NumberColumn("95% CI low", format="%.1f"),
        "ci_high": st.column_config.NumberColumn("95% CI high", format="%.1f"),
        "School (%)": st.column_config.NumberColumn(format="%.1f"),
        "denominator": st.column_config.NumberColumn("n", format="localized"),
        "district_value": st.column_config.NumberColumn("District (%)", format="%.1f"),
        "vs_district": st.column_config.NumberColumn("vs district (pts)", format="%+.1f"),
        "target": st.column_config.NumberColumn("Target (%)", format="%.1f"),
        "gap": st.column_config.NumberColumn("Gap vs other students (pts)", format="%+.1f"),
        "note": st.column_config.TextColumn("Note"),
    }
    # Shared views: each row is a cell of the district's release; a gap also needs the school's ALL cell, and
    # the district value beside it is the district's cell.
    n_rows = len(show)
    metrics_of, groups_of, years_of = show["metric"].tolist(), show["student_group"].tolist(), [year] * n_rows
    shown, profile_config = ui.public_cells(
        show[["Metric", "Group", "School (%)", "ci_low", "ci_high", "denominator", "district_value", "vs_district",
              "target", "gap", "note"]], profile_config, cells=([school_id] * n_rows, years_of, metrics_of, groups_of),
        n_col="denominator", rate_col="School (%)", interval_cols=["ci_low", "ci_high"],
        derived_cols=["vs_district", "gap"],
        requires={"vs_district": (["district"] * n_rows, years_of, metrics_of, groups_of),
                  "gap": ([school_id] * n_rows, years_of, metrics_of, ["ALL"] * n_rows)},
        rates={"district_value": (["district"] * n_rows, years_of, metrics_of, groups_of)})
    # Columns with nothing in them (e.g. intervals and n for report-card files without counts) are not drawn.
    empty = [c for c in ("ci_low", "ci_high", "denominator", "target", "gap", "note")
             if show[c].replace("", np.nan).isna().all()]
    readable, readable_config = ui.no_none(shown.drop(columns=empty), profile_config)
    return readable, readable_config, shown


st.subheader("SSIF profile")
readable, readable_config, shown = profile_table(ui.data_version(), school_id, year, ui.share_token())
st.dataframe(ui.arrow_ready(readable), hide_index=True, width="stretch", height=min(420, 35 * (len(shown) + 1) + 3),
             column_config=readable_config)
ui.download_menu(f"profile-{school_id}-{year}", shown)
st.caption("District values are pooled from counts (the median of school values where the files have no "
           "counts). Gaps compare a group with all other students of this school (two-proportion test). Groups "
           "with fewer than 10 students are not shown.")

# --- trends ------------------------------------------------------------------------------------------
st.subheader("Trends")
metric_choices = metrics_of_profile(ui.data_version(), school_id, year)
# `metric` and `group` are carried from the district and cluster views, so the breadcrumbs lead back to them.
metric = ui.url_choice("Metric for trends", "metric", metric_choices, metric_choices[0], format_func=ui.metric_label,
                       strict=False)
carried_group = st.query_params.get("group") if st.query_params.get("group") in STUDENT_GROUPS else None
with crumbs:
    view = {"year": year, "metric": metric, "group": carried_group}
    ui.breadcrumb(("District", "pages/overview.py", view),
                  (info["cluster"], "pages/cluster.py", {"cluster": info["cluster"], **view}),
                  (info["school_name"], None, {}))
chosen_groups = st.multiselect("Groups", [g for g in STUDENT_GROUPS if g in present],
                               default=list(dict.fromkeys(g for g in ("ALL", carried_group, "BL", "HI", "FARMS", "SWD")
                                                          if g in present)),
                               format_func=group_label, key="trend_groups")


@ui.drawn
def trend_view(version: int, school_id: str, metric: str, groups: tuple[str, ...], share: str | None):
    """The trend chart, its table by year and its summary (None with one school year only)."""
    trend = rows[(rows["metric"] == metric) & rows["student_group"].isin(groups)
                 & ((rows["denominator"] >= 10) | (rows["denominator"].isna() & rows["value"].notna()))].copy()
    trend = trend[ui.exact_cells(trend["school_id"].tolist(), trend["school_year"].tolist(), trend["metric"].tolist(),
                                 trend["student_group"].tolist())]  # shared views draw released values only
    trend["series"] = trend["student_group"].map(group_label)
    if trend["school_year"].nunique() <= 1:
        return None
    wide = trend.pivot_table(index="series", columns="school_year", values="value")
    first, last = wide.columns.min(), wide.columns.max()
    summary = (f"{ui.metric_label(metric)} at {info['school_name']}, {ui.year_label(first)} to "
               f"{ui.year_label(last)}: " + "; ".join(
                   f"{g} {wide.loc[g, first]:.1f}% → {wide.loc[g, last]:.1f}%" for g in wide.index
                   if pd.notna(wide.loc[g, first]) and pd.notna(wide.loc[g, last])) + ".")
    by_year = ui.filled(wide.reset_index().rename(columns={"series": "Group"}),
                        {y: "{:.1f}" for y in wide.columns}).rename(columns=ui.year_label_of)
    chart = ui.finished(charts.trend_lines, trend, ui.metric_label(metric), title=f"{ui.metric_label(metric)} by group",
                        key=("school", version, school_id, metric, groups, share))  # the view: no hashing of rows
    return chart, by_year, summary


trend = trend_view(ui.data_version(), school_id, metric, tuple(chosen_groups), ui.share_token())
if trend is not None:
    ui.chart(*trend)
else:
    st.caption("Only one school year: no trends to show yet.")

# --- discipline summary ------------------------------------------------------------------------------
st.subheader("Discipline")


@ui.drawn
def discipline_table(version: int, school_id: str, year: int, share: str | None):
    """The school's suspension table for a year with its column settings (None without discipline rows)."""
    discipline = ui.discipline([school_id])
    current = discipline[discipline["school_year"] == year]
    if current.empty:
        return None
    suspended = current["students_suspended"].fillna(current["students_oss"])
    table = pd.DataFrame({
        "Group": current["student_group"].map(group_label),
        "Enrolled": current["enrolled"],
        "Suspended": suspended,
        "Rate (%)": np.where(current["enrolled"] >= 10, 100 * suspended / current["enrolled"], np.nan),
        "OSS days": current["oss_days"],
    })
    table["_order"] = current["student_group"].map({g: i for i, g in enumerate(STUDENT_GROUPS)}).to_numpy()
    table = table.sort_values("_order").drop(columns="_order")
    config = ui.text_columns({"Rate (%)": "Rate (%)"}) | {"Enrolled": st.column_config.NumberColumn(format="localized")}
    if ui.is_public():  # each row is a suspension cell of the release; OSS days need the OSS cell too
        ordered = current.loc[table.index]
        n_rows = len(ordered)
        cells = ([school_id] * n_rows, [year] * n_rows, ["suspension_rate"] * n_rows, ordered["student_group"].tolist())
        table, config = ui.public_cells(table, config, cells=cells, n_col="Enrolled", count_cols=["Suspended"],
                                        rate_col="Rate (%)", derived_cols=["OSS days"],
                                        requires={"OSS days": (*cells[:2], ["oss"] * n_rows, cells[3])})
    return ui.filled(table, {"Rate (%)": "{:.1f}"}), config


suspensions = discipline_table(ui.data_version(), school_id, year, ui.share_token())
if suspensions is None:
    st.info("No discipline data for this school and year.")
else:
    st.dataframe(ui.arrow_ready(suspensions[0]), hide_index=True, width="stretch", column_config=suspensions[1])
    st.caption("Suspension rate = students with at least one suspension / enrolled. Groups under 10 students have "
               "no rate shown.")
