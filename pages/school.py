"""`/school`: one school's SSIF profile (URL: school, year)."""

import numpy as np
import streamlit as st

from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.outputs.school_view import profile_display, school_findings, trend_groups, trend_rows, years_and_groups
from pages import ui
from pages.ui import school_views

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
    found = np.flatnonzero(schools["school_id"].to_numpy() == school_id)  # one comparison, no index built
    if not len(found):
        return None
    info = schools.iloc[found[0]]
    facts = [f"School {school_id}", f"{info['level']}", f"{info['cluster']} cluster"]
    if np.isfinite(info["enrollment"]):
        facts.append(f"{info['enrollment']:,.0f} students")
    if info.get("title1") is True:
        facts.append("Title I")
    facts.append(f"restorative practices since {int(info['rp_start_year']) - 1}-{str(int(info['rp_start_year']))[-2:]}"
                 if np.isfinite(info["rp_start_year"]) else "no restorative-practices start recorded")
    return info, ui.school_names().get(school_id, info["school_name"]), " · ".join(facts)


header = school_header(ui.import_version(), school_id)
if header is None:
    ui.breadcrumb(("District", "pages/overview.py", {}), ("School not found", None, {}))
    ui.not_found(f"School “{school_id}” was not found.")

info, title, facts = header
crumbs = st.container()
st.title(title)
st.caption(facts)
ui.link("School Performance Plan: goals, progress and walkthroughs", "pages/plans.py", icon=":material/flag:",
        school=school_id)

opening_views = ui.opening_views()  # what each school's first view reads, made ahead after an import
opening = opening_views.of(school_id) if opening_views is not None else None


def school_rows():
    """The school's rows, every year and group (read once a view needs more than its opening view)."""
    return ui.school_metrics(school_id)


@ui.drawn
def school_years_and_groups(version: int, school_id: str) -> tuple[list[int], set[str]]:
    """The school years and student groups the school has rows for."""
    return (opening.years, opening.present) if opening is not None else years_and_groups(school_rows())


years, present = school_years_and_groups(ui.import_version(), school_id)
if not years:
    st.info("No metric data for this school yet.")
    st.stop()
year = int(ui.url_choice("School year", "year", [str(y) for y in years], str(years[-1]),
                         format_func=lambda y: f"{int(y) - 1}-{str(y)[-2:]}"))
share = ui.share_token()
prepared = opening if opening is not None and share is None and year == opening.years[-1] else None


@ui.drawn
def profile_for(version: int, school_id: str, year: int):
    """The school's profile for a year against the district (cached per data version; read-only): the latest
    year's is a slice of every school's, made ahead after an import."""
    return ui.school_profile_of(school_id, year)


@ui.drawn
def metrics_of_profile(version: int, school_id: str, year: int) -> list[str]:
    """The metrics in the school's profile, in its order (the trend's choices)."""
    return prepared.metrics if prepared is not None else list(profile_for(version, school_id, year)["metric"].unique())


# --- findings --------------------------------------------------------------------------------------
@ui.drawn
def findings(version: int, school_id: str, year: int, share: str | None) -> list[str]:
    """The findings' lines, once per data version, school, year and shared link (the privacy rules)."""
    if prepared is not None:
        return prepared.findings
    higher = ui.higher_is_better()
    return school_findings(school_rows(), profile_for(version, school_id, year), school_id, year, years,
                           ui.metric_label, lambda m: higher.get(m, True), ui.exact_cells)


st.subheader("Findings")
st.markdown("\n".join(findings(ui.import_version(), school_id, year, share)))

# --- profile table -----------------------------------------------------------------------------------
@ui.drawn
def profile_table(version: int, school_id: str, year: int, share: str | None):
    """The profile as shown (labels, hidden small groups, privacy rules) and as downloaded, with its column
    settings: once per data version, school, year and shared link (a staff member's opening view: made ahead)."""
    if prepared is not None:
        return opening_views.profile_table(school_id)
    show = profile_display(profile_for(version, school_id, year), ui.metric_labels())
    return school_views.profile_table(show, school_id, year, ui.is_public())


st.subheader("SSIF profile")
readable, readable_config, shown = profile_table(ui.import_version(), school_id, year, share)
st.dataframe(ui.arrow_ready(readable), hide_index=True, width="stretch", height=min(420, 35 * (len(shown) + 1) + 3),
             column_config=readable_config)
ui.download_menu(f"profile-{school_id}-{year}", shown)
st.caption("District values are pooled from counts (the median of school values where the files have no "
           "counts). Gaps compare a group with all other students of this school (two-proportion test). Groups "
           "with fewer than 10 students are not shown.")

# --- trends ------------------------------------------------------------------------------------------
st.subheader("Trends")
metric_choices = metrics_of_profile(ui.import_version(), school_id, year)
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
                               default=trend_groups(present, carried_group), format_func=group_label,
                               key="trend_groups")


@ui.drawn
def trend_view(version: int, school_id: str, metric: str, groups: tuple[str, ...], share: str | None):
    """The trend chart, its table by year and its summary (None with one school year only)."""
    wide = None
    if opening is not None and share is None and (metric, groups) == (opening.metric, opening.groups):
        trend, wide = opening_views.trend_rows(school_id), opening_views.trend_wide(school_id)  # staff: every row
    else:
        trend = trend_rows(school_rows(), metric, groups)
        trend = trend[ui.exact_cells(trend["school_id"].tolist(), trend["school_year"].tolist(),
                                     trend["metric"].tolist(), trend["student_group"].tolist())]  # shared: released
    return school_views.trend_view(trend, ui.metric_label(metric), info["school_name"],
                                   key=("school", version, school_id, metric, groups, share), wide=wide)


trend = trend_view(ui.import_version(), school_id, metric, tuple(chosen_groups), share)
if trend is not None:
    ui.chart(*trend)
else:
    st.caption("Only one school year: no trends to show yet.")

# --- discipline summary ------------------------------------------------------------------------------
st.subheader("Discipline")


@ui.drawn
def discipline_table(version: int, school_id: str, year: int, share: str | None):
    """The school's suspension table for a year with its column settings (None without discipline rows)."""
    if prepared is not None:  # a staff member's opening view: made ahead
        return opening_views.discipline_table(school_id)
    discipline = ui.discipline([school_id])
    return school_views.discipline_table(discipline[discipline["school_year"] == year], school_id, year,
                                         ui.is_public())


suspensions = discipline_table(ui.import_version(), school_id, year, share)
if suspensions is None:
    st.info("No discipline data for this school and year.")
else:
    st.dataframe(ui.arrow_ready(suspensions[0]), hide_index=True, width="stretch", column_config=suspensions[1])
    st.caption("Suspension rate = students with at least one suspension / enrolled. Groups under 10 students have "
               "no rate shown.")
