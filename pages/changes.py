"""`/changes`: what changed since the last data meeting (URL: cluster, since)."""

from datetime import date

import pandas as pd
import streamlit as st

from analytics.workspace import changes as change_rules
from analytics.workspace import records
from analytics.workspace import views as workspace
from analytics.workspace.ahead import CHANGES_KEPT_AS
from pages import ui

editor = ui.can_edit()
if ui.is_public():
    ui.not_found("What changed since a meeting is for staff; it is not part of shared links.")


@ui.drawn
def cluster_names(version: int) -> list[str]:
    """The district's clusters (the schools' table is not copied out of the cache on every rerun for them)."""
    return sorted(ui.schools()["cluster"].unique())


clusters = cluster_names(ui.import_version())
OPEN_LINK = st.column_config.LinkColumn("Open", display_text="Open ↗", width="small")  # each table's link column
SERIOUS_SHOWN = 10  # schools in the district's lead table; the rest are in the list and by cluster


@ui.cached_read
def meetings(version: int) -> pd.DataFrame:
    return records.load(ui.engine(), "meetings").sort_values("meeting_date")


@ui.drawn
def meetings_of(version: int, scope: str) -> pd.DataFrame:
    """The meetings of one scope (the district or a cluster), in date order."""
    held = meetings(version)
    return held[held["scope"] == scope]


@ui.kept_read(CHANGES_KEPT_AS)
def changes_for(version: int, cluster: str | None, since: date) -> pd.DataFrame:
    """The list: the goals' progress and the district's colours are made (when not yet) on the view's own
    threads, at this run's versions, while it computes the risk ratios. Kept in the database for this data
    version, so a restarted server reads the district's (seconds of work at 10,000 schools) instead; the command
    line keeps the district's ahead after an import (:mod:`analytics.workspace.ahead`)."""
    imports, then_year = ui.import_version(), change_rules.year_of_record(since)
    return workspace.changes_view(ui.engine(), cluster=cluster, since=since,
                                  progress=lambda: ui.goal_progress_at(version, imports, cluster)[1],
                                  flagged=ui.prepared_flags(cluster),
                                  colours=lambda: ui.colours_at(imports, cluster, then_year),
                                  monthly=ui.prepared_school_months())


@ui.drawn
def changes_summary(version: int, cluster: str | None, since: date) -> tuple[pd.DataFrame, str, list[str]]:
    """The list, its summary line and the kinds of change in it, once per data version and view (a rerun, e.g. a
    pill clicked, counts nothing again)."""
    table = changes_for(version, cluster, since)
    names = ui.school_names() if cluster is None else ui.cluster_members(cluster).set_index("school_id")["school_name"]
    return (table, change_rules.summary(table, names),  # names told apart within the scope, as its pack's
            [k for k in change_rules.CHANGE_KINDS if k in set(table["change"])])


@ui.drawn
def clusters_shown(version: int, since: date, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Schools with each chosen kind of change per cluster (labels as the list's), each linked to its
    cluster's list since the same date."""
    table = changes_summary(version, None, since)[0]
    counts = change_rules.by_cluster(table[table["change"].isin(kinds)], ui.schools())
    link = [ui.page_url("changes", cluster=c, since=since.isoformat()) for c in counts["cluster"]]
    counts.insert(0, "link", link)
    return counts.rename(columns=change_rules.CHANGE_LABELS)


@ui.drawn
def changes_shown(version: int, cluster: str | None, since: date,
                  kinds: tuple[str, ...]) -> tuple[pd.DataFrame, list[tuple[str, str]] | None]:
    """The changes of the chosen kinds as shown (labels; the page is for staff, so links carry no shared link's
    token) and, for a few schools, each school's heading and lines (None for more: the table is open instead)."""
    table = changes_summary(version, cluster, since)[0]
    chosen = table[table["change"].isin(kinds)]
    shown = chosen.assign(change=lambda d: d["change"].map(change_rules.CHANGE_LABELS))
    blocks = None
    if shown["school_id"].nunique() <= 25:  # a cluster: one block per school with its changes in full and real links,
        order = change_rules.most_serious_first(chosen)["school_id"]  # the most serious first
        by_school = dict(list(shown.groupby("school_id", sort=False)))
        blocks = [(f"**{ui._md_escape(block['school_name'].iloc[0])}** ({school_id})",
                   "\n".join(f"- [{row.change}](./{row.link}): {ui._md_escape(row.detail)}" for row in block.itertuples()))
                  for school_id, block in ((s, by_school[s]) for s in order)]
    return shown[["link", "school_name", "school_id", "change", "detail"]], blocks


@ui.drawn
def serious_shown(version: int, cluster: str | None, since: date, kinds: tuple[str, ...]) -> pd.DataFrame:
    """The schools with the most serious changes of the chosen kinds (how many of each), each linked to its page."""
    table = changes_summary(version, cluster, since)[0]
    ranked = change_rules.most_serious_first(table[table["change"].isin(kinds)], ui.school_names())
    ranked = ranked.head(SERIOUS_SHOWN)
    ranked.insert(0, "link", [ui.page_url("school", school=s) for s in ranked["school_id"]])
    ranked.insert(3, "cluster", ranked["school_id"].map(ui.school_field("cluster")))
    kept = ["link", "school", "school_id", "cluster", *[k for k in change_rules.CHANGE_KINDS
                                                         if k in kinds and k in change_rules.CONCERNS]]
    return ranked[kept].rename(columns=change_rules.CHANGE_LABELS)


crumbs = st.container()  # filled once the cluster is read from the URL or the picker below
st.title("What changed since the last meeting")
cols = st.columns([2, 1, 2])
cluster = ui.url_choice("Cluster", "cluster", ["all", *clusters], "all", container=cols[0],
                        format_func=lambda c: "Whole district" if c == "all" else c)
with crumbs:
    in_cluster = [] if cluster == "all" else [(cluster, "pages/cluster.py", {"cluster": cluster})]
    ui.breadcrumb(("District", "pages/overview.py", {}), *in_cluster, ("What changed", None, {}))
scope = "district" if cluster == "all" else cluster
held_here = meetings_of(ui.data_version(), scope)
raw_since = st.query_params.get("since")
if raw_since:
    try:
        since = date.fromisoformat(raw_since)
    except ValueError:
        ui.not_found(f"“{raw_since}” is not a date: use YYYY-MM-DD, e.g. since=2025-02-27.")
elif len(held_here):
    since = held_here["meeting_date"].iloc[-1].date()
else:
    since = None
picked = cols[1].date_input("Since", value=since, key=f"since_{scope}_{since}")
if picked is None:
    st.info(f"No meeting recorded for {'the district' if scope == 'district' else scope}: choose a date, or record "
            "the meeting below.")
else:
    since = picked
    st.query_params["since"] = since.isoformat()
    if len(held_here):
        cols[2].caption("Meetings of " + ("the district" if scope == "district" else scope) + ": " +
                        ", ".join(f"{d:%d %b %Y}" for d in held_here["meeting_date"].iloc[-4:]))
    view = (ui.data_version(), None if cluster == "all" else cluster, since)
    where = "the district's schools" if cluster == "all" else f"{cluster}'s schools"
    with st.spinner(f"Finding what changed in {where} since {since:%d %b %Y}…"):  # seconds after an import
        table, summary, kinds = changes_summary(*view)
    then_year = change_rules.year_of_record(since)
    st.markdown(f"**{summary}**")
    with st.expander("How changes are found"):
        st.markdown(
            f"The meeting on {since:%d %b %Y} saw school years up to **{then_year - 1}-{str(then_year)[-2:]}** "
            "(a school year ends on 30 June). Yearly indicators compare the latest year on file with that year: "
            "a **new risk-ratio flag** (3.0 or more in 3 consecutive years, now and not then); a **status colour "
            "worsened** into Orange or Red (from a better colour, groups of 30 or more); a **goal now off track** "
            "(and not off track before). Dated series (each PDSA ramp's measure, each school's suspensions per "
            "month) count a **new run-chart signal** when a shift or trend point falls after the meeting and the "
            "run chart up to the meeting did not already end in one. A **new year of data** is a school year after "
            "the one the meeting saw. A school with several changes of one kind gets one row listing them.")
    if table.empty:
        st.success("No school was newly flagged since the meeting.")
    else:
        chosen = st.pills("Show", kinds, selection_mode="multi", default=kinds,
                          format_func=lambda k: change_rules.CHANGE_LABELS[k], key="change_kinds")
        shown, blocks = changes_shown(*view, tuple(chosen or kinds))
        few = blocks is not None
        for heading, lines in blocks or ():
            with st.container(border=True):
                st.markdown(heading)
                st.markdown(lines)
        if not few:
            st.subheader("Most serious first")
            serious = serious_shown(*view, tuple(chosen or kinds))
            st.dataframe(ui.arrow_ready(serious), hide_index=True, width="stretch",
                         height=38 + 35 * len(serious),
                         column_config={"link": OPEN_LINK, "school": "School", "school_id": "Id",
                                        "cluster": "Cluster"})
            st.caption("Changes of each kind per school. Schools with more kinds of concern come first (a new year "
                       "of data is not one); then more new risk-ratio flags, goals now off track, worsened colours "
                       "and new run-chart signals, in that order.")
        if cluster == "all" and len(clusters) > 1:
            st.subheader("By cluster")
            counts = clusters_shown(ui.data_version(), since, tuple(chosen or kinds))
            st.dataframe(ui.arrow_ready(counts), hide_index=True, width="stretch",
                         height=min(38 + 35 * len(counts), 460),
                         column_config={"link": OPEN_LINK, "cluster": "Cluster", "schools": "Schools",
                                        "with_changes": "With changes"})
            st.caption("Schools in each cluster with each kind of change; open a cluster for its schools' changes.")
        if len(shown) <= change_rules.ROWS_AT_ONCE or st.toggle(f"Every school's changes ({len(shown):,} rows)",
                                                                key="every_change"):
            with st.expander("Every school's changes, as a table" if not few else "As a table"):
                st.dataframe(ui.arrow_ready(shown), hide_index=True,
                             width="stretch", height=min(38 + 35 * len(shown), 640),
                             column_config={"link": OPEN_LINK, "school_name": "School", "school_id": "Id",
                                            "change": "Change",
                                            "detail": st.column_config.TextColumn("What", width="large")})
        ui.download_menu(f"changes-since-{since}", table)
        st.caption("The meeting pack starts with this list: open **Data-meeting pack** for the cluster.")

if editor:
    with st.expander("Record a meeting", icon=":material/event:"), st.form("meeting_form"):
        when = st.date_input("Meeting date", value=date.today())
        note = st.text_input("Note (optional)")
        if st.form_submit_button("Record meeting"):
            records.add_meeting(ui.engine(), scope, when, ui.current_user(), note or None)
            st.query_params["since"] = when.isoformat()
            st.rerun()
