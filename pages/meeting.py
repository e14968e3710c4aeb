"""`/meeting`: build a data-meeting pack from views, preview it, export XLSX, PPTX or ZIP."""

from datetime import date

import pandas as pd
import streamlit as st

from analytics.outputs.meeting import (
    TITLES,
    ViewSpec,
    build_pack,
    deck_bytes,
    learning_specs,
    pack_title,
    specs_from_url,
    standard_specs,
    workbook_bytes,
    zip_bytes,
)
from pages import ui

st.title("Data-meeting pack")
st.caption("Pick the views for the meeting, put them in order, preview, and export one workbook (with native "
           "Excel charts), a slide deck, or a ZIP with everything.")
ui.require_data("metrics", "discipline", "incidents")
years = ui.years()
if not years:
    st.info("No data yet. Import files on the Data page.")
    st.stop()



@ui.drawn
def pack_clusters(version: int) -> list[str]:
    """The scopes a pack can have: the whole district, then each cluster."""
    return ["Whole district", *sorted(ui.schools()["cluster"].dropna().unique())]


@ui.drawn
def pack_schools(version: int, cluster: str) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """The schools of the scope by id, with the names people read, in the order listed; and the school
    filter's options with their labels (looked up by a dict: the filter lists every school of the scope)."""
    schools = ui.schools()
    in_cluster = schools if cluster == "Whole district" else schools[schools["cluster"] == cluster]
    names = ui.school_names().reindex(in_cluster["school_id"].astype(str)).to_dict()
    names = dict(sorted(names.items(), key=lambda item: item[1]))
    labels = {"All schools": "All schools", **names}
    return names, list(labels), labels


@ui.drawn
def pack_options(version: int) -> tuple[list[int], dict[int, str], list[str], dict[str, str]]:
    """The school years (latest first) and metrics the pack offers, each with its labels."""
    years = ui.years()[::-1]
    metrics = ui.metric_ids()
    return years, {y: ui.year_label(y) for y in years}, metrics, {m: ui.metric_label(m) for m in metrics}


cols = st.columns(4)
clusters = pack_clusters(ui.import_version())
cluster = cols[0].selectbox("Cluster", clusters, key="pack_cluster")
names, school_options, school_labels = pack_schools(ui.import_version(), cluster)
school = cols[1].selectbox("School", school_options, key="pack_school", format_func=school_labels.__getitem__)
year_options, year_labels, metric_options, metric_labels = pack_options(ui.import_version())
year = cols[2].selectbox("School year", year_options, key="pack_year", format_func=year_labels.__getitem__)
metric = cols[3].selectbox("Metric", metric_options, key="pack_metric", format_func=metric_labels.__getitem__)
scope = {"cluster": None if cluster == clusters[0] else cluster, "school": None if school == "All schools" else school}



@ui.drawn
def pack_defaults(version: int, cluster: str | None, school: str | None, year: int, metric: str):
    """The standard views of a scope (by view name) and the pack's default title."""
    schools = ui.schools()
    metric_names = {m: ui.metric_label(m) for m in ui.metric_ids()}
    standard = {spec.view: spec for spec in standard_specs(cluster, school, year, metric, schools, metric_names)}
    return standard, pack_title(schools, cluster, school, year)


defaults, default_title = pack_defaults(ui.import_version(), scope["cluster"], scope["school"], year, metric)
standard = dict(defaults)


@ui.drawn
def learning_views(version: int) -> list[ViewSpec]:
    """The professional-learning view, when a programme has been imported (asked once per data version)."""
    return learning_specs(ui.engine())


if ui.tables_present()["pl_programs"]:  # the PL sheet of a pack needs a programme
    standard.update({spec.view: spec for spec in learning_views(ui.import_version())})
left, right = st.columns([1, 1])
with left:
    st.markdown("**Standard views**")
    chosen = [v for v in TITLES if v in standard and st.checkbox(TITLES[v], value=True, key=f"pack_{v}")]
with right:
    example = ui.app_base_url() + "/" + ui.page_url("cluster", cluster=clusters[1] if len(clusters) > 1 else None,
                                                    year=year)  # at the address the app is opened at
    pasted = st.text_area("Or paste view URLs (one per line)", key="pack_urls", placeholder=example)

specs: list[ViewSpec] = [standard[view] for view in chosen if view in standard]
problems = []
for line in filter(None, (u.strip() for u in pasted.splitlines())):
    try:
        specs += specs_from_url(line)
    except ValueError as exc:
        problems.append(str(exc))
for problem in problems:
    st.warning(problem)

if not specs:
    st.info("Choose at least one view.")
    st.stop()



def _filters(filters: dict) -> str:
    """A view's filters in words for the order table."""
    parts = [names.get(filters.get("school"), filters.get("school")), filters.get("cluster") and
             f"{filters['cluster']} cluster", filters.get("year") and ui.year_label(filters["year"]),
             filters.get("metric") and ui.metric_label(filters["metric"])]
    return " · ".join(str(p) for p in parts if p) or "Whole district, every year"


@ui.drawn
def order_rows(version: int, cluster: str, views: tuple) -> pd.DataFrame:
    """The order table of the chosen views ((view, title, filters) each; school names as the cluster's list
    gives them): Streamlit edits a copy of it."""
    return pd.DataFrame({"order": range(1, len(views) + 1), "title": [title for _, title, _ in views],
                         "filters": [_filters(dict(filters)) for _, _, filters in views]})


order = st.data_editor(
    order_rows(ui.import_version(), cluster, tuple((s.view, s.title, tuple(s.filters.items())) for s in specs)),
    hide_index=True, width="stretch", key="pack_order", disabled=["filters"],
    column_config={"order": st.column_config.NumberColumn("Order", min_value=1, step=1),
                   "title": st.column_config.TextColumn("Slide and sheet title"),
                   "filters": st.column_config.TextColumn("Filters")},
)
ordered = [ViewSpec(specs[i].view, str(order.loc[i, "title"]), specs[i].filters)
           for i in order.sort_values("order", kind="stable").index]

meta = st.columns([3, 1, 1.4])
# The title follows the scope: a new cluster, school or year gives a new default title (pack_defaults).
title = meta[0].text_input("Pack title", default_title, key=f"pack_title_{default_title}")
on = meta[1].date_input("Meeting date", date.today(), key="pack_date")
public = meta[2].toggle("Public (privacy rules)", value=False, key="pack_public",
                        help="Suppress counts under 10, code rates <= 5% / >= 95%, complementary suppression.")

if st.button("Build the pack", type="primary", key="pack_build"):
    bar = st.progress(0.0, text="Building…")
    pack = build_pack(ui.engine(), ordered, title, on, public,
                      progress=lambda i, n, t: bar.progress(i / n, text=f"{i}/{n}: {t}"),
                      goal_progress=ui.goal_progress_of)  # every goal's progress, once per data version
    bar.progress(1.0, text="Writing files…")
    workbook, deck = workbook_bytes(pack), deck_bytes(pack)
    st.session_state["pack_files"] = {"xlsx": workbook, "pptx": deck, "zip": zip_bytes(pack, workbook, deck)}
    st.session_state["pack_preview"] = pack
    bar.empty()

pack = st.session_state.get("pack_preview")
files = st.session_state.get("pack_files")
if pack and files:
    stem = pack.stem
    d1, d2, d3 = st.columns(3)
    d1.download_button("Excel workbook", files["xlsx"], f"{stem}.xlsx", key="pack_dl_xlsx", on_click="ignore",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", width="stretch")
    d2.download_button("Slide deck", files["pptx"], f"{stem}.pptx", key="pack_dl_pptx", on_click="ignore",
                       mime="application/vnd.openxmlformats-officedocument.presentationml.presentation",
                       width="stretch")
    d3.download_button("ZIP (everything)", files["zip"], f"{stem}.zip", key="pack_dl_zip", on_click="ignore",
                       mime="application/zip", width="stretch")
    st.subheader("Preview")
    for item in pack.items:
        with st.expander(f"{item.spec.title} — {item.filters_text}"):
            st.markdown(item.finding)
            if item.chart is not None:
                st.altair_chart(item.chart, width="content")
            st.dataframe(item.sheet.head(200), hide_index=True, width="stretch")
