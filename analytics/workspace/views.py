"""The workspace's export views (DESIGN §7 `goals`, `changes`): load what they need, then call the pure core.

Both follow `analytics.outputs.views` conventions (percentages 0-100, NaN = not computed, `public`
applies the privacy rules) and are registered there, so `export goals|changes`, packs and pages share them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import loads, schema
from analytics.data.catalog import RACE_GROUPS, metric_catalog
from analytics.data.derived import suspension_metric_rows
from analytics.stats.run_charts import monthly_series_by_school
from analytics.workspace import changes as change_rules
from analytics.workspace import goals as goal_rules
from analytics.workspace import records


class WorkspaceViewError(ValueError):
    """Unknown school, cluster or goal, or no meeting date to count from."""


def scope_ids(engine: Engine, cluster: str | None = None, school: str | None = None) -> tuple[pd.DataFrame,
                                                                                              list[str] | None]:
    schools = loads.load_schools(engine)
    if school:
        if school not in set(schools["school_id"]):
            raise WorkspaceViewError(f"school {school!r} not found")
        return schools, [school]
    if cluster:
        if cluster not in set(schools["cluster"]):
            raise WorkspaceViewError(f"cluster {cluster!r} not found")
        return schools, schools.loc[schools["cluster"] == cluster, "school_id"].tolist()
    return schools, None


def directions(engine: Engine) -> dict[str, bool]:
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    return {m: bool(v) for m, v in catalog["higher_is_better"].items()}


def goal_metric_rows(engine: Engine, goals: pd.DataFrame, every_goal: bool = False) -> pd.DataFrame:
    """Metric rows of the goals' (school, metric, group) triples, filtered in SQL: each metric and group's rows
    of the schools with a goal on them, found by the index of metric and group (at 10,000 schools a sixth of
    the rows of every goal school, metric and group: 0.08 M rows, 0.8 s instead of 2.9 on PostgreSQL, which
    scanned every row for their OR); the suspension rate derived from discipline for
    schools with none imported (as :func:`analytics.data.derived.metrics_with_suspension` decides for one
    school), so a school's goals read the same rows whatever else is in scope.

    `every_goal`: `goals` are the whole goals table (the district's), so each condition names the goals'
    schools by a subquery of it rather than by a list of thousands of ids, which the driver and SQLAlchemy
    render one by one (0.2 s of the view's CPU time at 10,000 schools)."""
    if goals.empty:
        return pd.DataFrame(columns=schema.TABLES["metrics"].column_names)
    ids = None if every_goal else sorted(set(goals["school_id"]))
    rows = loads.load_metrics_any(engine, goal_metric_conditions(goals, every_goal))
    on_suspension = goals[goals["metric"] == "suspension_rate"]
    derive = sorted(set(on_suspension["school_id"]) - _imported_suspension(engine, ids))
    if not derive:
        return rows
    groups = set(on_suspension["student_group"])
    groups |= {"ALL", *RACE_GROUPS} if "ALL" in groups else set()  # a missing ALL is summed from races
    discipline = loads.load_discipline(engine, school_ids=derive, groups=sorted(groups))
    if discipline.empty:
        return rows
    derived = suspension_metric_rows(discipline)[list(rows.columns)]
    return pd.concat([rows, derived], ignore_index=True) if len(rows) else derived


def goal_metric_conditions(goals: pd.DataFrame, every_goal: bool = False) -> list[sa.ColumnElement[bool]]:
    """One condition per metric and group of the goals: that metric and group, of the schools with a goal on it
    (`every_goal`: those of the goals table, `goals` being all of it)."""
    m, g = schema.metrics, schema.school_goals
    pairs = goals.groupby(["metric", "student_group"], sort=True)["school_id"].unique()
    return [sa.and_(m.c.metric == metric, m.c.student_group == group,
                    loads.among(m.c.school_id, sa.select(g.c.school_id).where(g.c.metric == metric,
                                                                              g.c.student_group == group))
                    if every_goal else m.c.school_id.in_(sorted(schools)))
            for (metric, group), schools in pairs.items()]


def _imported_suspension(engine: Engine, school_ids: list[str] | None) -> set[str]:
    """The schools among `school_ids` (None: every school with a goal) with suspension-rate rows imported (not
    derived from discipline)."""
    m, g = schema.metrics, schema.school_goals
    among = (loads.among(m.c.school_id, sa.select(g.c.school_id)) if school_ids is None
             else m.c.school_id.in_(school_ids))
    stmt = sa.select(m.c.school_id).distinct().where(m.c.metric == "suspension_rate", among)
    with engine.connect() as conn:
        return set(conn.execute(stmt).scalars())


def goals_progress(engine: Engine, cluster: str | None = None, school: str | None = None,
                   goal_ids: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(goals, progress rows) for a scope."""
    schools, ids = scope_ids(engine, cluster, school)
    goals = records.load(engine, "school_goals", school_id=ids, goal_id=goal_ids)
    years = loads.available_years(engine)
    names = dict(zip(schools["school_id"], schools["school_name"], strict=True))
    every_goal = ids is None and goal_ids is None
    progress = goal_rules.goal_progress(goals, goal_metric_rows(engine, goals, every_goal), directions(engine), names,
                                        years[-1] if years else None)
    return goals, progress


def goals_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
               metric: str | None = None, group: str | None = None, public: bool = False,
               settings: Settings = DEFAULT_SETTINGS, held: tuple[pd.DataFrame, pd.DataFrame] | None = None,
               **_) -> pd.DataFrame:
    """`export goals`: one row per goal and measured year, retired goals left out.

    `held`: the scope's (goals, progress rows) when already computed (:func:`goals_progress`; the app slices
    the district's)."""
    goals, progress = goals_progress(engine, cluster, school) if held is None else held
    live = set(goals.loc[goals["status"] != "retired", "goal_id"])
    out = progress[progress["goal_id"].isin(live)]
    if year:
        out = out[out["school_year"] == year]
    if metric:
        out = out[out["metric"] == metric]
    if group:
        out = out[out["student_group"] == group]
    out = out.reset_index(drop=True)
    return _public_goals(engine, out, settings) if public else out


def _public_goals(engine: Engine, table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Privacy rules: a goal on a group with fewer than 10 students in any year shows no numbers at all
    (its trajectory starts at the baseline value, so one small year would give the others away)."""
    if table.empty:
        return table
    rows = loads.load_metrics(engine, school_ids=sorted(set(table["school_id"])), metrics=sorted(set(table["metric"])))
    n = rows.set_index(["school_id", "metric", "student_group", "school_year"])["denominator"]
    keys = list(zip(table["school_id"], table["metric"], table["student_group"], table["school_year"], strict=True))
    small = pd.Series([not (n.get(k, np.nan) >= settings.privacy_min_n) for k in keys], index=table.index)
    measured = table["value"].notna()
    hide_goal = table.loc[small & measured, "goal_id"].unique()
    out = table.astype({c: object for c in ("value", "ci_low", "ci_high", "trajectory", "progress")})
    hidden = out["goal_id"].isin(hide_goal)
    out.loc[hidden, ["value", "ci_low", "ci_high", "trajectory", "progress"]] = "*"
    coded = ~hidden & measured & ((table["value"] <= settings.privacy_low_pct) |
                                  (table["value"] >= settings.privacy_high_pct))
    out.loc[coded, "value"] = [f"<= {settings.privacy_low_pct:.1f}%" if v <= settings.privacy_low_pct else
                               f">= {settings.privacy_high_pct:.1f}%" for v in table.loc[coded, "value"]]
    out.loc[coded, ["ci_low", "ci_high"]] = "*"
    return out


def last_meeting(engine: Engine, scope: str, before: date | None = None) -> date | None:
    """The latest meeting date recorded for a scope (`district` or a cluster name)."""
    m = schema.meetings
    stmt = sa.select(sa.func.max(m.c.meeting_date)).where(m.c.scope == scope)
    if before:
        stmt = stmt.where(m.c.meeting_date <= before)
    with engine.connect() as conn:
        found = conn.execute(stmt).scalar_one_or_none()
    return pd.Timestamp(found).date() if found is not None else None


Given = pd.DataFrame | Callable[[], pd.DataFrame | None] | None  # a result, how to make it, or None


def _made(given: Given) -> pd.DataFrame | None:
    return given() if callable(given) else given


def changes_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
                 metric: str | None = None, group: str | None = None, since: date | str | None = None,
                 public: bool = False, settings: Settings = DEFAULT_SETTINGS, progress: Given = None,
                 flagged: pd.DataFrame | None = None, colours: Given = None,
                 monthly: pd.DataFrame | None = None, **_) -> pd.DataFrame:
    """`export changes`: schools newly flagged since `since` (default: the scope's last meeting).

    `progress`: the scope's goal progress when already computed (:func:`goals_progress`; the app slices
    the district's). `flagged`: the scope's flagged disproportionality rows of every year when already
    computed with these settings (the discipline page's, which the app prepares after an import): the new
    flags are found among them, and no risk ratio is computed here (:func:`_dispro` computes only the groups
    that can be flagged, with the same ratios). `colours`: the district's worsened cells from the meeting's
    year to the latest (:func:`district_colours`, these settings), which a scope slices (:func:`_worsened`).
    `monthly`: every school's suspensions per month (:func:`monthly_suspensions` of the district), sliced
    likewise: a school's series is its own rows alone. `progress` and `colours` may be given as functions that
    make them (None: not made), called on threads of their own while the risk ratios are computed: a
    district's, made before the view, waited for each other (9 of its 18 s at 10,000 schools)."""
    schools, ids = scope_ids(engine, cluster, school)
    since = _since(engine, cluster, since)
    then_year = change_rules.year_of_record(since)
    years = loads.available_years(engine)
    now_year = years[-1] if years else then_year
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    labels = dict(zip(catalog["metric"], catalog["label"], strict=True))

    def goals() -> pd.DataFrame:
        made = _made(progress)
        return goals_progress(engine, cluster, school)[1] if made is None else made

    def rows(found: pd.DataFrame) -> pd.DataFrame:
        return change_rules.one_row_per_school_and_kind(found) if len(found) else found

    # The parts read the database independently: the colours (the longest read), the goals' progress and the
    # dated series and years are read on threads of their own while this one computes the risk ratios, each
    # on its own pooled connection. Each thread then finds its kind of change and joins its rows per school (a
    # district's 185,000 worsened cells at 10,000 schools): what is left after the last read is to order them.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="changes") as reads:
        worsened = reads.submit(lambda: rows(_worsened(engine, cluster, school, then_year, now_year, labels,
                                                       settings, _made(colours))))
        moved = reads.submit(lambda: rows(change_rules.goals_moved_off_track(goals(), then_year, labels)))
        signals = reads.submit(lambda: rows(change_rules.new_signals(_series(engine, ids, monthly), since)))
        newer = reads.submit(lambda: rows(change_rules.new_years(_data_years(engine, ids, then_year), then_year)))
        dispro = _dispro(engine, ids, settings, then_year, now_year) if flagged is None else flagged
        parts = [rows(change_rules.new_rr_flags(dispro, then_year, now_year)), worsened.result(), moved.result(),
                 signals.result(), newer.result()]
    out = change_rules.combine(parts, schools, since)
    if public:  # values, ratios and colours of cells the privacy rules may hide: the public list names the change
        generic = {"new_rr_flag": "a student group now meets the 3-year risk-ratio rule",
                   "status_worsened": "a status colour worsened into Orange or Red",
                   "goal_off_track": "a School Performance Plan goal is now off track"}
        named = out["change"].isin(list(generic))
        out.loc[named, "detail"] = out.loc[named, "change"].map(generic)
    return out


def _since(engine: Engine, cluster: str | None, since: date | str | None) -> date:
    if isinstance(since, str) and since:
        try:
            return date.fromisoformat(since)
        except ValueError as exc:
            raise WorkspaceViewError(f"since {since!r} is not a date (YYYY-MM-DD)") from exc
    if isinstance(since, date):
        return since
    found = last_meeting(engine, cluster or "district")
    if found is None:
        raise WorkspaceViewError(f"no meeting recorded for {cluster or 'the district'}: give a date (--since)")
    return found


def _dispro(engine: Engine, ids: list[str] | None, settings: Settings, then_year: int, now_year: int) -> pd.DataFrame:
    """Risk ratios of the years whose flags are compared: each of the two years and the years its
    consecutive-year rule looks back on (a flag in another year is not read), of the groups that can be
    flagged in the latest year (:func:`analytics.data.aggregates_discipline.flag_candidate_rows`: their rows and their
    schools' ALL rows, in one read): a new flag is one of theirs. The alternate ratios divide by the district's
    risks, summed in SQL for those years while the rows are read (at 10,000 schools 0.08 M rows instead of
    0.19 M)."""
    from analytics.data.aggregates_discipline import district_risks, flag_candidate_rows
    from analytics.stats.disproportionality import disproportionality

    years = sorted({y - back for y in (then_year, now_year) for back in range(settings.consecutive_years)})
    if ids is not None:  # a scope's few rows first: one with no group that can be flagged sums no district risks
        rows = flag_candidate_rows(engine, now_year, years, settings, ids)
        return disproportionality(rows, settings, district=district_risks(engine, years) if len(rows) else None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="risks") as reads:
        risks = reads.submit(district_risks, engine, years)
        rows = flag_candidate_rows(engine, now_year, years, settings, ids)
        return disproportionality(rows, settings, district=risks.result() if len(rows) else None)


def district_colours(engine: Engine, then_year: int, now_year: int,
                     settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The district's worsened cells from `then_year` to `now_year`
    (:func:`analytics.data.aggregates_status.worsened_colours`), which every scope and meeting date of that year
    slices: a cell's colours depend on its own rows, its school's level and the years alone."""
    from analytics.data.aggregates_status import worsened_colours

    return worsened_colours(engine, then_year, now_year, directions(engine), settings=settings)


def _worsened(engine: Engine, cluster: str | None, school: str | None, then_year: int, now_year: int,
              labels: dict[str, str], settings: Settings = DEFAULT_SETTINGS,
              district: pd.DataFrame | None = None) -> pd.DataFrame:
    """Status colours (DESIGN §3 grid) worsened into Orange or Red since the meeting's year, coloured in the
    database (:func:`analytics.data.aggregates_status.worsened_colours`): only the cells that worsened are read.

    `district`: :func:`district_colours` of these years, sliced to the scope's schools when their suspension
    rate comes from the same table as the district's (imported, or derived from discipline: decided per
    scope, :func:`analytics.data.aggregates.suspension_derived`); else the scope's own are read."""
    if now_year <= then_year:
        return change_rules._empty()
    from analytics.data.aggregates import suspension_derived
    from analytics.data.aggregates_status import worsened_colours

    _, ids = scope_ids(engine, cluster, school)
    years = sorted({then_year - 1, then_year, now_year - 1, now_year})
    if district is not None and (ids is None or suspension_derived(engine, years, ids) ==
                                 suspension_derived(engine, years)):
        cells = district if ids is None else district[district["school_id"].isin(ids)]
    else:
        cells = worsened_colours(engine, then_year, now_year, directions(engine), school_ids=ids, settings=settings)
    return change_rules.worsened_cells(cells, now_year, labels)


def _series(engine: Engine, ids: list[str] | None, monthly: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dated series whose run charts are watched: each cycle ramp's custom measure, monthly suspensions
    (`monthly`: the district's, :func:`monthly_suspensions`, when already made: the scope's rows of it)."""
    frames = []
    cycles = records.load(engine, "pdsa_cycles", school_id=ids)
    if len(cycles):
        measures = records.load(engine, "cycle_measures", cycle_id=cycles["cycle_id"].tolist())
        merged = measures.merge(cycles[["cycle_id", "school_id", "measure", "change_idea"]], on="cycle_id")
        if len(merged):
            frames.append(pd.DataFrame({
                "school_id": merged["school_id"], "period": merged["date"], "value": merged["value"],
                "source": "cycle " + merged["cycle_id"] + " (" + merged["measure"].fillna("custom measure") + ")",
                "link": "cycles?cycle=" + merged["cycle_id"]}))
    if monthly is None:
        monthly = monthly_suspensions(engine, ids)
    elif ids is not None:
        monthly = monthly[monthly["school_id"].isin(ids)]
    if len(monthly):
        frames.append(monthly.assign(source="suspensions per month",
                                     link="discipline?school=" + monthly["school_id"].astype(str)))
    if not frames:
        return pd.DataFrame(columns=["school_id", "period", "value", "source", "link"])
    return pd.concat(frames, ignore_index=True)


def monthly_suspensions(engine: Engine, ids: list[str] | None, min_months: int = 10) -> pd.DataFrame:
    """Suspensions (ISS or OSS incidents) per school and month, as `monthly_incident_series` counts them for
    one school (months without incidents inside a school's range count 0; July is left out), for every
    school at once from the database's counts per school and month; schools with fewer than `min_months`
    months are left out (too short for a run chart)."""
    from analytics.data.aggregates_discipline import monthly_incident_counts

    counts = monthly_incident_counts(engine, actions=["ISS", "OSS"], school_ids=ids, by_school=True)
    return monthly_series_by_school(counts, min_months)


def _data_years(engine: Engine, ids: list[str] | None, after: int) -> pd.DataFrame:
    """(school_id, school_year) with metrics or discipline rows for a year after `after`: only the newer
    years are read (by the year's index). A district's on PostgreSQL: each newer year's schools of each table
    by a loose index scan of its partition's school index (:func:`analytics.data.loads.distinct_statement`),
    one seek per school, where ``DISTINCT`` read each of its rows (1.3 M metrics rows a year at 10,000 schools;
    0.1-0.2 s instead of 0.75)."""
    with engine.connect() as conn:
        if ids is None and conn.dialect.name == "postgresql":
            return _district_data_years(conn, after)
        stmts = []
        for table in (schema.metrics, schema.discipline):
            stmt = sa.select(table.c.school_id, table.c.school_year).distinct().where(table.c.school_year > after)
            if ids is not None:
                stmt = stmt.where(table.c.school_id.in_(ids))
            stmts.append(stmt)
        rows = conn.execute(sa.union(*stmts)).all()
    return pd.DataFrame(rows, columns=["school_id", "school_year"])


def _district_data_years(conn: sa.Connection, after: int) -> pd.DataFrame:
    """:func:`_data_years` of every school: one loose index scan per table and newer year (each statement names
    its steps after its table, so the years are read one statement at a time)."""
    found = set()
    for name in ("metrics", "discipline"):
        table = schema.DATA_TABLES[name]
        held = conn.execute(loads.years_statement(conn, name)).scalars()
        for year in sorted(int(y) for y in held if int(y) > after):
            schools = loads.distinct_statement(table.c.school_id, table.c.school_year == year)
            found.update((school, year) for school in conn.execute(schools).scalars())
    return pd.DataFrame(sorted(found), columns=["school_id", "school_year"])
