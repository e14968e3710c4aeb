"""The workspace's sheets and slides in data-meeting packs: what changed since the last meeting (the
pack's first sheet and slide) and goal progress. Registered with `analytics.outputs.pack_views`.
"""

from __future__ import annotations

import os

import altair as alt
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.data.catalog import group_label
from analytics.outputs.pack_views import Context, Figure, GoalProgressOf, PackView, register_pack_view
from analytics.workspace import changes as change_rules
from analytics.workspace import goals as goal_rules
from analytics.workspace import views as workspace


def meeting_scope(engine: Engine, filters: dict) -> str:
    """Whose meetings a pack counts from: its cluster's, a school's cluster's, else the district's."""
    if filters.get("cluster"):
        return str(filters["cluster"])
    if filters.get("school"):
        schools, _ = workspace.scope_ids(engine, school=str(filters["school"]))
        return str(schools.set_index("school_id").loc[str(filters["school"]), "cluster"])
    return "district"


def changes_table(engine: Engine, filters: dict, public: bool,
                  goal_progress: GoalProgressOf | None = None) -> pd.DataFrame:
    since = filters.get("since") or workspace.last_meeting(engine, meeting_scope(engine, filters))
    if since is None:  # no meeting recorded: the sheet says so instead of failing the pack
        return pd.DataFrame(columns=change_rules.CHANGE_COLUMNS)
    cluster, school = filters.get("cluster"), filters.get("school")
    return workspace.changes_view(engine, cluster=cluster, school=school, since=since, public=public,
                                  progress=goal_progress(cluster, school)[1] if goal_progress else None)


def changes_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    counts = (table.groupby("change")["school_id"].nunique().reindex(list(change_rules.CHANGE_KINDS)).dropna()
              .astype(int).reset_index())
    counts.columns = ["kind", "Schools"]
    counts["Change"] = counts["kind"].map(change_rules.CHANGE_LABELS)
    chart = alt.Chart(counts).mark_bar(color="#0072B2").encode(
        y=alt.Y("Change:N", sort=None, title=None), x=alt.X("Schools:Q", title="Schools newly flagged"),
        tooltip=["Change:N", "Schools:Q"])
    labels = chart.mark_text(align="left", dx=4).encode(text="Schools:Q")
    since = table["since"].iloc[0]
    return Figure((chart + labels).properties(title=f"What changed in {ctx.scope} since the meeting of {since}",
                                              height=alt.Step(36)),
                  counts[["Change", "Schools"]], "bar", ["Schools"], "Change", "Schools")


def changes_finding(ctx: Context, table: pd.DataFrame) -> str:
    if table.empty:
        return f"No school in {ctx.scope} was newly flagged since the last meeting (or no meeting is recorded)."
    return f"Since the meeting of {table['since'].iloc[0]}: " + change_rules.summary(table, ctx.names)


class ChangesView(PackView):
    def people(self, name: str, ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
        base = os.environ.get("SSIF_BASE_URL", "http://localhost:8501").rstrip("/")
        out = table.assign(change=table["change"].map(change_rules.CHANGE_LABELS),
                           link=base + "/" + table["link"].astype(str))
        out = out[["school_name", "school_id", "change", "detail", "since", "link"]]
        return out.rename(columns={"school_name": "School", "school_id": "School id", "change": "Change",
                                   "detail": "What", "since": "Since the meeting of", "link": "Dashboard view"})


def goals_table(engine: Engine, filters: dict, public: bool,
                goal_progress: GoalProgressOf | None = None) -> pd.DataFrame:
    cluster, school = filters.get("cluster"), filters.get("school")
    return workspace.goals_view(engine, cluster=cluster, school=school, public=public,
                                held=goal_progress(cluster, school) if goal_progress else None)


def goals_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    if table.empty:
        return None
    now = goal_rules.latest_progress(table)
    counts = now["progress"].value_counts().reindex(list(goal_rules.PROGRESS)).fillna(0).astype(int).reset_index()
    counts.columns = ["progress", "Goals"]
    counts["Progress"] = counts["progress"].map(goal_rules.PROGRESS_LABELS)
    chart = alt.Chart(counts).mark_bar(color="#0072B2").encode(
        y=alt.Y("Progress:N", sort=None, title=None), x=alt.X("Goals:Q", title="Goals (latest measured year)"),
        tooltip=["Progress:N", "Goals:Q"])
    return Figure((chart + chart.mark_text(align="left", dx=4).encode(text="Goals:Q")).properties(
        title=f"School Performance Plan goals in {ctx.scope}", height=alt.Step(36)),
        counts[["Progress", "Goals"]], "bar", ["Goals"], "Progress", "Goals")


def goals_finding(ctx: Context, table: pd.DataFrame) -> str:
    if table.empty:
        return f"No School Performance Plan goals recorded for {ctx.scope}."
    now = goal_rules.latest_progress(table)
    counts = now["progress"].value_counts()
    return (f"{counts.get('on_track', 0)} of {len(now)} goals on track in their latest measured year "
            f"({counts.get('at_risk', 0)} at risk, {counts.get('off_track', 0)} off track, "
            f"{counts.get('not_measured', 0)} not yet measured); on track = at or past the trajectory, at risk = "
            "only the 95% interval reaches it.")


class GoalsView(PackView):
    def people(self, name: str, ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
        out = table.assign(student_group=table["student_group"].map(group_label),
                           metric=table["metric"].map(lambda m: ctx.metric_names.get(m, m)),
                           progress=table["progress"].map(lambda p: goal_rules.PROGRESS_LABELS.get(p, p)))
        return out.rename(columns={"goal_id": "Goal", "school_name": "School", "school_id": "School id",
                                   "metric": "Metric", "student_group": "Student group", "school_year": "School year",
                                   "value": "Value", "ci_low": "95% low", "ci_high": "95% high",
                                   "trajectory": "Trajectory", "progress": "Progress"})


register_pack_view("changes", ChangesView("What changed since the last meeting", changes_figure, changes_finding,
                                          table=changes_table, sheet="What changed"), first=True)
register_pack_view("goals", GoalsView("School Performance Plan goals", goals_figure, goals_finding,
                                      table=goals_table, sheet="Goals"))
