"""`/cluster`: one cluster's schools side by side, flags and trends (URL: cluster, year, metric, group)."""

import numpy as np
import pandas as pd
import streamlit as st

from analytics.data.catalog import group_label
from analytics.outputs import charts_district as charts
from analytics.outputs.labels import chance_text, counted
from analytics.stats.rates import two_proportion_test
from analytics.stats.summaries import (
    MEDIAN,
    MEDIAN_LABEL,
    NO_COUNTS,
    summary_kpi_from_counts,
    top_and_bottom,
)
from pages import ui

ui.require_data("metrics", "discipline")
schools = ui.schools()
clusters = sorted(schools["cluster"].dropna().unique())
cluster = st.query_params.get("cluster")
if not cluster:
    st.title("Clusters")
    st.info("Choose a cluster to open.")
    for name in clusters:
        ui.link(name, "pages/cluster.py", cluster=name)
    st.stop()
if cluster not in clusters:
    ui.breadcrumb(("District", "pages/overview.py", {}), ("Cluster not found", None, {}))
    ui.not_found(f"Cluster “{cluster}” was not found.", options=clusters)

crumbs = st.container()
st.title(f"{cluster} cluster")


members = ui.cluster_members(cluster)  # two schools of one name are told apart (by id) in every chart and table
years = ui.years()
year, metric, group = ui.filter_bar()
with crumbs:
    ui.breadcrumb(("District", "pages/overview.py", {"year": year, "metric": metric, "group": group}),
                  (cluster, None, {}))
label = ui.metric_label(metric)
higher_is_better = ui.higher_is_better().get(metric, True)



@ui.shared
def cluster_tables(version: int, cluster: str, metric: str, year: int, group: str):
    """Cluster and district KPIs, school values, cluster ranking and trend rows for one view (read-only).
    The district's figures, ranking and clusters are the overview's (shared by every cluster's view)."""
    # The cluster's rows and their sums per year, split off the district's rows once per data version.
    cluster_rows, in_cluster = ui.cluster_slice(metric, group, cluster)
    trend = cluster_rows.merge(members[["school_id", "school_name"]], on="school_id")
    # Small schools borrow strength from every school of the district (empirical Bayes).
    district, _, peers, ranked = ui.district_tables(metric, year, group)
    by_school = ranked[ranked["school_id"].isin(members["school_id"])].reset_index(drop=True)
    return (summary_kpi_from_counts(in_cluster, cluster_rows, year, group, years, basis=district.basis), district,
            by_school, peers, trend)


def released_tables(cluster_kpi, district_kpi, by_school, peers, trend):
    """What a shared view may draw: cells released exactly (a coded or hidden KPI shows no number and no
    difference), schools in the chart and trends only where exact, a rank only when every cluster is."""
    from dataclasses import replace

    def kpi(kpi_, unit):
        state, n_hidden = ui.cell_states([unit], [year], [metric], [group])
        if state[0] in ("exact", "none"):
            return kpi_
        return replace(kpi_, value=np.nan, denominator=np.nan if n_hidden[0] else kpi_.denominator)

    exact = ui.exact_cells(by_school["school_id"].tolist(), [year] * len(by_school), [metric] * len(by_school),
                           [group] * len(by_school))
    by_school = by_school.assign(_released=exact)
    peers_exact = ui.exact_cells(("cluster:" + peers["cluster"]).tolist(), [year] * len(peers),
                                 [metric] * len(peers), [group] * len(peers)).all() if len(peers) else False
    trend = trend[ui.exact_cells(trend["school_id"].tolist(), trend["school_year"].tolist(),
                                 [metric] * len(trend), [group] * len(trend))]
    return (kpi(cluster_kpi, f"cluster:{cluster}"), kpi(district_kpi, "district"), by_school,
            peers if peers_exact else peers.iloc[0:0], trend)


cluster_kpi, district_kpi, by_school, peers, trend = cluster_tables(ui.import_version(), cluster, metric, year, group)

value_only = district_kpi.basis == MEDIAN
if ui.is_public():  # shared views: KPIs, dots, rank, trends and the table follow the district's release
    cluster_kpi, district_kpi, by_school, peers, trend = released_tables(cluster_kpi, district_kpi, by_school, peers,
                                                                         trend)


@ui.drawn
def cluster_facts(version: int, cluster: str, metric: str, year: int, group: str, share: str | None):
    """The levels of the cluster's schools, the schools the dot chart can draw (released ones in a shared
    view) and the cluster's rank line (None when it has no rank)."""
    levels = ", ".join(sorted(members["level"].value_counts().index))
    plotted = by_school.dropna(subset=["value"]).copy()
    if ui.is_public():
        plotted = plotted[plotted["_released"]]
    plotted["school_label"] = plotted["school_name"] + " (" + plotted["level"] + ")"
    rank_line = None
    if not peers.empty and cluster in set(peers["cluster"]):
        ranked = peers.sort_values("value", ascending=not higher_is_better).reset_index(drop=True)
        rank = int(ranked.index[ranked["cluster"] == cluster][0]) + 1
        basis = MEDIAN_LABEL if value_only else "pooled"
        rank_line = (f"**Rank among clusters:** {rank} of {len(ranked)} ({basis} {label.lower()}, "
                     f"{group_label(group)}).")
    return levels, plotted, rank_line


levels_text, plotted, rank_line = cluster_facts(ui.import_version(), cluster, metric, year, group, ui.share_token())
k1, k2, k3, k4 = st.columns(4)
versus = "district median" if value_only else "district"
# A short label fits a quarter of the page; the metric's full name, the group and the year are in its help.
k1.metric(f"Cluster {label.split(' (')[0].lower()}",
          ui.released_pct(cluster_kpi.value, f"cluster:{cluster}", year, metric, group),
          delta=f"{cluster_kpi.value - district_kpi.value:+.1f} pts vs {versus}"
          if np.isfinite(cluster_kpi.value) and np.isfinite(district_kpi.value) else None,
          delta_color="normal" if higher_is_better else "inverse",
          help=f"{label}, {group_label(group)}, {ui.year_label(year)}: " + (
              f"the {MEDIAN_LABEL} in the cluster: {NO_COUNTS}." if value_only
              else "pooled from counts across the cluster."))
k2.metric("District median" if value_only else "District",
          ui.released_pct(district_kpi.value, "district", year, metric, group))
if value_only:
    k3.metric("Range of school values", f"{ui.fmt_pct(cluster_kpi.low)} – {ui.fmt_pct(cluster_kpi.high)}")
else:
    k3.metric("Students measured (n)", f"{cluster_kpi.denominator:,.0f}" if np.isfinite(cluster_kpi.denominator) else "–")
k4.metric("Schools reporting", f"{cluster_kpi.n_schools} of {len(members)}",
          help="Schools with a value for this metric, group and year. Levels: "
          + levels_text)
if value_only:
    st.caption(f"**Cluster and district figures are the {MEDIAN_LABEL}**: the files give percentages only, "
               f"and {NO_COUNTS}.")


def flags(row: pd.Series) -> str:
    """Why a director should look at this school: likely or significantly worse than the district, below target."""
    notes = []
    if np.isfinite(row.get("denominator", np.nan)) and row["denominator"] >= 10:
        p = two_proportion_test(row["numerator"], row["denominator"], district_kpi.numerator, district_kpi.denominator)
        worse = (row["value"] < district_kpi.value) == higher_is_better
        if row.get("needs_attention", False):
            notes.append(f"● needs attention ({chance_text(row['prob_worse'])} likely worse than district)")
        if p < 0.05:
            notes.append("▼ worse than district (p < 0.05)" if worse else "▲ better than district (p < 0.05)")
    elif np.isfinite(row.get("denominator", np.nan)):
        notes.append("n < 10: too few to judge")
    target = row.get("target", np.nan)
    if np.isfinite(target) and np.isfinite(row["value"]):
        below = row["value"] < target if higher_is_better else row["value"] > target
        if below:
            notes.append("misses target")
    return "; ".join(notes)


LONG_LIST, SHOWN_EACH_END = 40, 15


@ui.drawn
def trend_view(version: int, cluster: str, metric: str, year: int, group: str, share: str | None,
               shown: tuple[str, ...] | None):
    """The trend chart of the schools in the dot chart (`shown`; None: every school), their table by year and
    their summary; None with one school year only."""
    if trend["school_year"].nunique() <= 1:
        return None
    rows = trend[trend["school_id"].isin(set(shown))] if shown is not None else trend
    first, last = rows["school_year"].min(), rows["school_year"].max()
    ends = rows[rows["school_year"].isin([first, last])].pivot_table(
        index="school_name", columns="school_year", values="value").dropna()
    moved = ends[last] - ends[first] if len(ends) else pd.Series(dtype=float)
    summary = (f"{label} by school, {ui.year_label(first)} to {ui.year_label(last)}: "
               + "; ".join(f"{name} {ends.loc[name, first]:.1f}% → {ends.loc[name, last]:.1f}%"
                           for name in moved.sort_values().index) + "." if len(ends) else "")
    by_year = ui.filled(rows.pivot_table(index="school_name", columns="school_year", values="value")
                        .reset_index().rename(columns={"school_name": "School"}),
                        {y: "{:.1f}" for y in sorted(rows["school_year"].unique())}).rename(columns=ui.year_label_of)
    chart = ui.finished(charts.trend_lines, rows.rename(columns={"school_name": "school"}), label,
                        color_field="school", facet_field="school", columns=2, title=f"{label}: trend by school",
                        key=("cluster", version, cluster, metric, year, group, share, shown))  # no hashing of rows
    return chart, by_year, summary


@ui.drawn
def dots_view(version: int, cluster: str, metric: str, year: int, group: str, share: str | None,
              best_and_worst: bool):
    """The dot chart (every school, or the best and worst), its summary, its rows as people read them and
    the rows it downloads."""
    shown, subtitle = plotted, None
    if best_and_worst:
        shown = top_and_bottom(plotted, SHOWN_EACH_END, higher_is_better)
        subtitle = (f"The {SHOWN_EACH_END} best and {SHOWN_EACH_END} worst of {len(by_school.dropna(subset=['value']))} "
                    "schools; choose “All” or see the table below for every school.")
    dots = ui.finished(charts.school_dot_plot, shown, label, district_kpi.value, subtitle=subtitle,
                       key=("cluster", version, cluster, metric, year, group, share, best_and_worst))
    ranked = shown.sort_values("value", ascending=False)
    summary = (f"{label}, {group_label(group).lower()}, {ui.year_label(year)}: {counted(len(ranked), 'school')} "
               "shown, from "
               f"{ranked['school_name'].iloc[0]} ({ui.fmt_pct(ranked['value'].iloc[0])}) to "
               f"{ranked['school_name'].iloc[-1]} ({ui.fmt_pct(ranked['value'].iloc[-1])}); district "
               f"{'median ' if value_only else ''}{ui.fmt_pct(district_kpi.value)} (dashed line).")
    dot_columns = ["school_name", "value"] if value_only else ["school_name", "value", "ci_low", "ci_high",
                                                              "denominator"]
    dot_rows = ui.filled(ranked[dot_columns], {
        "value": "{:.1f}", "ci_low": "{:.1f}", "ci_high": "{:.1f}", "denominator": "{:,.0f}"}).rename(columns={
            "school_name": "School", "value": f"{label} (%)", "ci_low": "95% CI low", "ci_high": "95% CI high",
            "denominator": "Students (n)"})
    return shown, dots, summary, dot_rows, shown.drop(columns=["latitude", "longitude"], errors="ignore")


long_list = len(plotted) > LONG_LIST
left, right = st.columns([3, 2])
with left:
    if plotted.empty:
        st.info(f"No values for {label}, {group_label(group)}, {ui.year_label(year)} in this cluster.")
    else:
        best_and_worst = long_list and st.radio(
            "Schools in the chart", ["best and worst", "all"], horizontal=True, key="dots_shown",
            format_func=lambda o: f"Best and worst {SHOWN_EACH_END}" if o == "best and worst"
            else f"All {len(plotted)}") == "best and worst"
        plotted, dots, summary, dot_rows, downloaded = dots_view(ui.import_version(), cluster, metric, year, group,
                                                                 ui.share_token(), best_and_worst)
        if not ui.is_public():  # viewers download the suppressed table below instead
            ui.download_menu(f"{cluster}-{metric}-{group}-{year}", downloaded, dots)
        event = ui.chart(dots, dot_rows, summary, key="school_dots", on_select="rerun",
                         public_safe=True)  # shared views plot released schools and figures only
        picked = (event.selection.get("pick_school") or []) if event else []
        if picked:
            ui.go("pages/school.py", school=picked[0]["school_id"], year=year, metric=metric, group=group)
with right:
    if rank_line:
        st.markdown(rank_line)
    trends = trend_view(ui.import_version(), cluster, metric, year, group, ui.share_token(),
                        tuple(plotted["school_id"]) if long_list else None)
    if trends is not None:
        trend_chart, by_year, trend_summary = trends
        ui.chart(trend_chart, by_year, trend_summary, caption=False)
    else:
        st.caption("Only one school year: no trends to show yet.")


@ui.drawn
def schools_table(version: int, cluster: str, metric: str, year: int, group: str, share: str | None):
    """The cluster's schools as listed (flags, links, privacy rules), with the readable copy and settings."""
    # worst adjusted rate first (empirical Bayes), raw rate when a school has no counts
    table = by_school.assign(
        flags=by_school.apply(flags, axis=1) if not by_school.empty else "",
        open=[ui.page_url("school", **ui._with_share({"school": s, "year": year, "metric": metric, "group": group}))
              for s in by_school["school_id"]])
    school_config = {
        "school_name": st.column_config.TextColumn("School"),
        "level": st.column_config.TextColumn("Level"),
        "value": st.column_config.NumberColumn(f"{label.split(' (')[0]} (%)", format="%.1f",
                                               help=f"{label}: the published rate."),
        "ci_low": st.column_config.NumberColumn("CI low", format="%.1f", help="95% Wilson interval, low end (%)."),
        "ci_high": st.column_config.NumberColumn("CI high", format="%.1f", help="95% Wilson interval, high end (%)."),
        "denominator": st.column_config.NumberColumn("n", format="localized"),
        "adjusted": st.column_config.NumberColumn(
            "Adjusted (%)", format="%.1f", help="Empirical-Bayes rate: the school's rate moved towards the district "
            "rate by how few students it has. Used for the order of this list, not published."),
        "reliability": st.column_config.NumberColumn(
            "Reliability", format="%.2f", help="Weight on the school's own data, n / (n + a + b): 1 = its own rate, "
            "0 = the district rate."),
        "target": st.column_config.NumberColumn("Target (%)", format="%.1f"),
        "flags": st.column_config.TextColumn("Flags"),
        "open": st.column_config.LinkColumn("Open", display_text="Open →"),
    }
    if ui.is_public():  # released schools in their order, the others after them by name (an order is a value)
        released = table["_released"].to_numpy()
        table = pd.concat([table[released], table[~released].sort_values("school_name")], ignore_index=True)
    n_rows = len(table)
    shown, school_config = ui.public_cells(
        table[["school_name", "level", "value", "ci_low", "ci_high", "denominator", "adjusted", "reliability", "flags",
               "target", "open"]], school_config,
        cells=(table["school_id"].tolist(), [year] * n_rows, [metric] * n_rows, [group] * n_rows),
        n_col="denominator", rate_col="value", interval_cols=["ci_low", "ci_high"],
        derived_cols=["adjusted", "reliability", "flags"])
    readable, readable_config = ui.no_none(shown, school_config)  # "–", never "None"
    return table, shown, readable, readable_config


st.subheader("Schools")
table, shown, readable, readable_config = schools_table(ui.import_version(), cluster, metric, year, group,
                                                        ui.share_token())
ui.download_menu(f"{cluster}-schools-{metric}-{group}-{year}", shown.drop(columns="open"))
# Key columns first (a phone shows about four); intervals and n only where the files have counts. With the
# details the flags (the widest text) come last at a set width, so every column fits beside them on a laptop.
key_columns = ["school_name", "value", "flags", "open"]
details = [] if value_only else ["ci_low", "ci_high", "denominator", "adjusted", "reliability"]
if st.toggle("Show level, intervals, n and targets" if details else "Show level and targets",
             value=not ui.is_public(), key="school_table_all"):
    key_columns = ["school_name", "value", "level", *details, *(["target"] if table["target"].notna().any() else []),
                   "open", "flags"]
    readable_config = readable_config | {"flags": st.column_config.TextColumn(
        "Flags", width="medium", help="Hover a cell for its flags in full; the note below explains them.")}
event = st.dataframe(ui.arrow_ready(readable), hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                     key="school_table", column_config=readable_config, column_order=key_columns)
chosen = event.selection.rows if event else []
if chosen:
    ui.go("pages/school.py", school=table.loc[chosen[0], "school_id"], year=year, metric=metric, group=group)
school_links = [(name, "pages/school.py", {"school": sid, "year": year, "metric": metric, "group": group})
                for sid, name in zip(table["school_id"], table["school_name"], strict=True)]
if len(school_links) > LONG_LIST:
    with st.expander(f"Open a school: all {len(school_links)} as links"):
        ui.link_row("Open a school", school_links)
else:
    ui.link_row("Open a school", school_links)
if value_only:
    st.caption(f"Flags: only School Performance Plan targets can be checked here: {NO_COUNTS}. Values are "
               "shown as published.")
else:
    st.caption("Order: worst first by the adjusted rate, which moves each school's rate towards the district rate "
               "by how few students it has (empirical Bayes, beta-binomial across the district's schools), so a small "
               "school does not top or bottom the list by chance; the published rate is the unadjusted one. Flags: "
               "needs attention when the school's true rate is at least 95% likely to be worse than the district's; "
               "worse or better than district (p < 0.05): significantly so by a two-proportion test; misses its School "
               "Performance Plan target. Groups with fewer than 10 students are not judged.")
