"""`/` District overview: KPIs, map of schools, clusters compared (URL: year, metric, group)."""

import numpy as np
import pandas as pd
import streamlit as st

from analytics.config import map_style
from analytics.data.catalog import group_label
from analytics.outputs.labels import chance_text, counted, for_count
from analytics.stats.summaries import MEDIAN, MEDIAN_LABEL, NO_COUNTS
from pages import ui

st.title("District overview")
ui.require_data("metrics", "discipline")
years = ui.years()
year, metric, group = ui.filter_bar()

catalog = ui.metric_catalog()
label = ui.metric_label(metric)
higher_is_better = bool(catalog.loc[metric, "higher_is_better"]) if metric in catalog.index else True
schools = ui.schools()



kpi, by_school, by_cluster, ranked_schools = ui.district_tables(metric, year, group)  # KPI, schools, clusters, ranked


def released_overview(kpi, by_school, by_cluster, ranked):
    """What a shared view may show: the district KPI and its change only from cells released exactly, school
    and cluster values only where exact (no value, no colour otherwise), attention among released schools."""
    from dataclasses import replace

    def mask(frame: pd.DataFrame, units: list[str]) -> pd.DataFrame:
        n = len(frame)
        state, n_hidden = ui.cell_states(units, [year] * n, [metric] * n, [group] * n)
        out = frame.copy()
        hide = ~np.isin(state, ["exact", "none"])
        out.loc[hide, [c for c in ("value", "ci_low", "ci_high", "numerator") if c in out]] = np.nan
        out.loc[n_hidden, "denominator"] = np.nan
        return out.assign(_released=~hide)

    state, n_hidden = ui.cell_states(["district"] * 2, [year, kpi.previous_year or year], [metric] * 2, [group] * 2)
    if state[0] not in ("exact", "none"):
        kpi = replace(kpi, value=np.nan, ci_low=np.nan, ci_high=np.nan, change=np.nan,
                      denominator=np.nan if n_hidden[0] else kpi.denominator)
    elif state[1] not in ("exact", "none"):
        kpi = replace(kpi, change=np.nan)
    by_school = mask(by_school, by_school["school_id"].tolist())
    by_cluster = mask(by_cluster, ("cluster:" + by_cluster["cluster"]).tolist())
    ranked = mask(ranked, ranked["school_id"].tolist())
    return kpi, by_school, by_cluster, ranked[ranked["_released"]]


if ui.is_public():
    kpi, by_school, by_cluster, ranked_schools = released_overview(kpi, by_school, by_cluster, ranked_schools)
value_only = kpi.basis == MEDIAN
k1, k2, k3, k4 = st.columns(4)
if value_only:
    k1.metric(f"{label} — {group_label(group)}", ui.fmt_pct(kpi.value),
              help=f"The {MEDIAN_LABEL} across the district: {NO_COUNTS}.")
    if np.isfinite(kpi.change):
        k2.metric(f"Change in median since {ui.year_label(kpi.previous_year)}", f"{kpi.change:+.1f} pts",
                  help=f"A plain difference of medians, not tested: {NO_COUNTS}.")
    else:
        k2.metric("Change since last year", "–", help="No earlier year to compare.")
    k3.metric("Range of school values", f"{ui.fmt_pct(kpi.low)} – {ui.fmt_pct(kpi.high)}",
              help="Lowest and highest school value.")
else:
    k1.metric(f"{label} — {group_label(group)}", ui.released_pct(kpi.value, "district", year, metric, group),
              help="Pooled from counts: all students meeting the measure / all students measured, district-wide.")
    if np.isfinite(kpi.change):
        verdict = "significant" if kpi.significant else "not significant"
        k2.metric(f"Change since {ui.year_label(kpi.previous_year)}", f"{kpi.change:+.1f} pts",
                  delta=f"{kpi.change:+.1f} pts ({verdict}, {ui.fmt_p(kpi.p_value)})",
                  delta_color="normal" if higher_is_better else "inverse",
                  help="Two-proportion z-test on pooled counts (Fisher's exact test when cells are small).")
    else:
        k2.metric("Change since last year", "–", help="No earlier year with counts to compare.")
    k3.metric("Students measured (n)", f"{kpi.denominator:,.0f}" if np.isfinite(kpi.denominator) else "–",
              help=f"95% Wilson interval {ui.fmt_pct(kpi.ci_low)} – {ui.fmt_pct(kpi.ci_high)}")
k4.metric("Schools reporting", f"{kpi.n_schools:,}",
          help=f"Schools with a {'value' if value_only else 'count'} for this metric, group and year.")
if value_only:
    st.caption(f"**{label} is a {MEDIAN_LABEL}** (range shown): the files give percentages only, and "
               f"{NO_COUNTS}. Each school's published value is shown as it is.")
if kpi.n_left_out:
    what = "a value" if value_only else "counts"
    st.caption(f"{kpi.n_left_out:,} school rows without {what} (suppressed or missing) are left out of "
               f"{'the median' if value_only else 'pooled values'}.")

# --- map and clusters --------------------------------------------------------------------------------
# Imported once the KPIs are drawn: the charts' Altair and pydeck take 0.5-2 s to import on a server's first run.
from analytics.outputs import charts_district as charts  # noqa: E402


@ui.shared
def map_view(version: int, metric: str, year: int, group: str, share: str | None):
    """The school map (serialised once per data version and view), its colour scale's ends and the number of
    schools on it; None when no school has coordinates."""
    located = by_school.dropna(subset=["latitude", "longitude"]).copy()
    if located.empty:
        return None
    # Only a known count under 10 hides a value; a file without counts hides nothing.
    small = located["denominator"].notna() & (located["denominator"] < 10)
    shown = located["value"].where(~small)
    located["color"], worst, best = charts.better_colours(shown, higher_is_better)
    located["value_text"] = np.where(
        small, "fewer than 10 students: not shown",
        shown.map(lambda v: "no value (suppressed or missing)" if np.isnan(v) else f"{v:.1f}%"))
    located["n_text"] = located["denominator"].map(
        lambda n: "not published" if np.isnan(n) else f"{n:,.0f}")
    deck = ui.FinishedMap(charts.school_map(
        located[["school_id", "school_name", "cluster", "latitude", "longitude", "color", "value_text",
                 "n_text"]],
        "<b>{school_name}</b><br/>{cluster}<br/>" + label + ": {value_text}<br/>students (n) = {n_text}",
        areas=ui.cluster_areas(), map_style=map_style(),
    ))
    return deck, worst, best, len(located)


@ui.drawn
def map_list(version: int, metric: str, year: int, group: str, share: str | None):
    """Every school's value as a table (the map's text alternative), with its column settings."""
    listed = by_school.assign(shown=by_school["value"].where(
        ~(by_school["denominator"].notna() & (by_school["denominator"] < 10))))
    listed = listed.sort_values(["cluster", "school_name"])
    return ui.public_table(
        listed[["school_name", "cluster", "shown", "denominator"]],
        {"school_name": st.column_config.TextColumn("School"), "cluster": st.column_config.TextColumn("Cluster"),
         "shown": st.column_config.NumberColumn(f"{label} (%)", format="%.1f"),
         "denominator": st.column_config.NumberColumn("Students (n)", format="localized")},
        n_col="denominator", rate_cols=["shown"])


@ui.drawn
def cluster_chart(version: int, metric: str, year: int, group: str, share: str | None):
    """The clusters' chart, its summary and its rows as people read them, once per data version and view."""
    chart = ui.finished(charts.cluster_comparison, by_cluster, label, kpi.value, higher_is_better, basis=kpi.basis)
    ranked = by_cluster.dropna(subset=["value"]).sort_values("value", ascending=not higher_is_better)
    basis = f"{MEDIAN_LABEL} by cluster" if value_only else "pooled by cluster"
    summary = (f"{label}, {group_label(group).lower()}, {ui.year_label(year)}, {basis}: district "
               f"{ui.fmt_pct(kpi.value)}; best {ranked['cluster'].iloc[0]} ({ui.fmt_pct(ranked['value'].iloc[0])}),"
               f" last {ranked['cluster'].iloc[-1]} ({ui.fmt_pct(ranked['value'].iloc[-1])}) of {len(ranked)}."
               if len(ranked) else f"No values for {label}.")
    if value_only:
        chart_rows = ui.filled(ranked[["cluster", "value", "low", "high", "n_schools"]], {
            "value": "{:.1f}", "low": "{:.1f}", "high": "{:.1f}", "n_schools": "{:,.0f}"}).rename(columns={
                "cluster": "Cluster", "value": f"{label} (%, {MEDIAN_LABEL})", "low": "Lowest school (%)",
                "high": "Highest school (%)", "n_schools": "Schools with a value"})
    else:
        chart_rows = ui.filled(ranked[["cluster", "value", "ci_low", "ci_high", "denominator"]], {
            "value": "{:.1f}", "ci_low": "{:.1f}", "ci_high": "{:.1f}", "denominator": "{:,.0f}"}).rename(columns={
                "cluster": "Cluster", "value": f"{label} (%)", "ci_low": "95% CI low", "ci_high": "95% CI high",
                "denominator": "Students (n)"})
    return chart, summary, chart_rows


left, right = st.columns([3, 2])

with left:
    st.subheader("Schools on the map")
    located = map_view(ui.import_version(), metric, year, group, ui.share_token())
    if located is None:
        st.info("No school has coordinates; add latitude and longitude to the schools file to see the map.")
    else:
        deck, worst, best, n_located = located
        event = st.pydeck_chart(deck, on_select="rerun", selection_mode="single-object", key="school_map",
                                height=440)
        picked = (event.selection.get("objects") or {}).get("schools") if event else None
        if picked:
            ui.go("pages/school.py", school=picked[0]["school_id"], year=year, metric=metric, group=group)
        direction = "higher" if higher_is_better else "lower"
        grey = "no value" if value_only else "fewer than 10 students or no value"
        st.markdown(
            f"<div style='display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;font-size:.85rem'>"
            f"<span>worse {worst:.0f}%</span><span style='flex:0 0 160px;height:12px;"
            f"background:{charts.viridis_legend_css()}'></span><span>{best:.0f}% better</span>"
            f"<span>Brighter = better ({direction} is better for {label.lower()}); grey = {grey}. "
            f"Outlines: cluster areas.</span></div>",
            unsafe_allow_html=True,
        )
        missing = len(by_school) - n_located
        if missing:
            st.caption(f"{counted(missing, 'school')} {for_count(missing, 'has', 'have')} no coordinates and "
                       f"{for_count(missing, 'is', 'are')} not on the map.")
        with st.expander("The map as a list (every school's value)"):
            listed, config = map_list(ui.import_version(), metric, year, group, ui.share_token())
            st.dataframe(ui.arrow_ready(listed), hide_index=True, width="stretch", height=300, column_config=config)

with right:
    st.subheader("Clusters compared")
    if by_cluster.empty:
        st.info(f"No {'values' if value_only else 'counts'} for {label}, {group_label(group)}, {ui.year_label(year)}.")
    else:
        chart, summary, chart_rows = cluster_chart(ui.import_version(), metric, year, group, ui.share_token())
        ui.download_menu(f"clusters-{metric}-{group}-{year}", by_cluster, chart)
        event = ui.chart(chart, chart_rows, summary, key="cluster_bars", on_select="rerun",
                         height=max(260, 24 * len(by_cluster) + 90))
        picked = (event.selection.get("pick") or []) if event else []
        if picked:
            ui.go("pages/cluster.py", cluster=picked[0]["cluster"], year=year, metric=metric, group=group)


@ui.drawn
def clusters_table(version: int, metric: str, year: int, group: str, share: str | None):
    """The clusters as listed, best first, with a link to each (once per data version and view)."""
    table = by_cluster.sort_values("value", ascending=not higher_is_better).reset_index(drop=True)
    table["open"] = [ui.page_url("cluster", **ui._with_share({"cluster": c, "year": year, "metric": metric,
                                                               "group": group})) for c in table["cluster"]]
    if value_only:
        columns = ["cluster", "value", "low", "high", "n_schools", "n_rows_left_out", "open"]
        value_title = f"{label} (%, median of school values)"
    else:
        columns = ["cluster", "value", "ci_low", "ci_high", "denominator", "n_schools", "open"]
        value_title = f"{label} (%)"
    return table, table[columns], value_title


# --- clusters table --------------------------------------------------------------------------------
st.subheader("Clusters")
if by_cluster.empty:
    st.caption("Every cluster can still be opened:")
    ui.link_row("Open a cluster", [(c, "pages/cluster.py", {"cluster": c, "year": year, "metric": metric,
                                                             "group": group})
                                   for c in sorted(schools["cluster"].dropna().unique())])
else:
    table, listed, value_title = clusters_table(ui.import_version(), metric, year, group, ui.share_token())
    event = st.dataframe(
        ui.arrow_ready(listed),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="cluster_table",
        column_config={
            "cluster": st.column_config.TextColumn("Cluster"),
            "value": st.column_config.NumberColumn(value_title, format="%.1f"),
            "ci_low": st.column_config.NumberColumn("95% CI low", format="%.1f"),
            "ci_high": st.column_config.NumberColumn("95% CI high", format="%.1f"),
            "low": st.column_config.NumberColumn("Lowest school (%)", format="%.1f"),
            "high": st.column_config.NumberColumn("Highest school (%)", format="%.1f"),
            "denominator": st.column_config.NumberColumn("Students (n)", format="localized"),
            "n_schools": st.column_config.NumberColumn("Schools with a value" if value_only else "Schools"),
            "n_rows_left_out": st.column_config.NumberColumn("Without a value"),
            "open": st.column_config.LinkColumn("Open", display_text="Open cluster →"),
        },
    )
    chosen = event.selection.rows if event else []
    if chosen:
        ui.go("pages/cluster.py", cluster=table.loc[chosen[0], "cluster"], year=year, metric=metric, group=group)
    ui.link_row("Open a cluster", [(c, "pages/cluster.py", {"cluster": c, "year": year, "metric": metric,
                                                             "group": group}) for c in table["cluster"]])
    if value_only:
        st.caption(f"Select a row, click a bar or follow a link to open a cluster. Values are the {MEDIAN_LABEL} "
                   f"in each cluster, with the lowest and highest; {NO_COUNTS}.")
    else:
        st.caption("Select a row, click a bar or follow a link to open a cluster. Values are pooled from counts "
                   "(sum of students meeting the measure / sum of students measured), never averages of school "
                   "percentages.")

# --- schools that may need attention -------------------------------------------------------------------
@ui.drawn
def attention_view(version: int, metric: str, year: int, group: str, share: str | None):
    """The schools that may need attention (count, the worst 10 as listed and their column settings)."""
    attention = ranked_schools[ranked_schools["needs_attention"] & (ranked_schools["denominator"] >= 10)]
    if attention.empty:
        return 0, None, None
    listed = attention.head(10).assign(
        prob_worse=lambda d: d["prob_worse"].map(chance_text),
        open=lambda d: [ui.page_url("school", **ui._with_share({"school": s, "year": year, "metric": metric,
                                                                 "group": group})) for s in d["school_id"]])
    attention_config = {
        "school_name": st.column_config.TextColumn("School"),
        "cluster": st.column_config.TextColumn("Cluster"),
        "value": st.column_config.NumberColumn(f"{label} (%)", format="%.1f", help="The published rate."),
        "denominator": st.column_config.NumberColumn("n", format="localized"),
        "adjusted": st.column_config.NumberColumn("Adjusted (%)", format="%.1f"),
        "reliability": st.column_config.NumberColumn("Reliability", format="%.2f"),
        "prob_worse": st.column_config.TextColumn("Chance worse than district"),
        "open": st.column_config.LinkColumn("Open", display_text="Open school →"),
    }
    # One set: the listed schools are part of the district total above.
    shown, attention_config = ui.public_table(
        listed[["school_name", "cluster", "value", "denominator", "adjusted", "reliability", "prob_worse", "open"]]
        .assign(_set="district"), attention_config, n_col="denominator", count_cols=(), rate_cols=["value"],
        derived_cols=["adjusted", "reliability", "prob_worse"], sets=[["_set"]])
    return len(attention), shown.drop(columns="_set"), attention_config


st.subheader("Schools that may need attention")
n_attention, attention_rows, attention_config = (0, None, None) if value_only else attention_view(
    ui.import_version(), metric, year, group, ui.share_token())
if value_only:
    st.markdown(f"Not assessed: {NO_COUNTS}, and small numbers cannot be accounted for without them.")
elif not n_attention:
    st.markdown(f"No school's {label.lower()} for {group_label(group).lower()} is at least 95% likely to be worse "
                "than the district's once small numbers are accounted for.")
else:
    st.dataframe(ui.arrow_ready(attention_rows), hide_index=True, width="stretch", column_config=attention_config)
    more = n_attention - len(attention_rows)
    shown_note = f"; the {len(attention_rows)} worst shown" if more else ""
    st.caption(f"{counted(n_attention, 'school')} at least 95% likely to be worse than the district{shown_note}. "
               "Ordered by the adjusted rate: each school's rate moved towards the district rate by how few students "
               "it has (empirical Bayes, beta-binomial), so small schools are not listed by chance. Reliability is the "
               "weight on the school's own data (1 = its own rate). The published rate is the unadjusted one.")
