"""The tables behind each view, with the exact CSV columns of DESIGN §7 (more columns may follow).

Rates, risks, intervals, gaps and differences are percentages (0-100); ratios are plain numbers;
NaN (an empty cell) means not computed. With ``public=True`` the privacy rules of
``analytics.access.privacy`` are applied before the table leaves this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.access.privacy import release_view
from analytics.access.release import Release
from analytics.access.release_store import release_for
from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import aggregates, aggregates_discipline, loads
from analytics.data.catalog import metric_catalog
from analytics.data.derived import metrics_with_suspension, suspension_metric_rows
from analytics.stats.disproportionality import COLUMNS as DISPRO_COLUMNS
from analytics.stats.gaps import GAP_COLUMNS, gap_table, label_gaps
from analytics.stats.rates import add_rate_columns, pool_counts, rates_from_pooled_counts
from analytics.stats.rp_impact import SUMMARY_COLUMNS, comparison_scope, rp_impact, rp_impact_for_school
from analytics.stats.run_charts import monthly_incident_series, run_chart
from analytics.stats.status_change import COLUMNS as STATUS_COLUMNS
from analytics.stats.status_change import status_change

RATE_COLUMNS = ["school_id", "school_year", "metric", "student_group", "numerator", "denominator", "value", "ci_low",
                "ci_high"]
RUN_COLUMNS = ["school_id", "period", "value", "median", "signal"]
VIEWS = ("rates", "gaps", "status-change", "disproportionality", "rp-impact", "run-chart", "learning", "goals",
         "changes")
# Views of the improvement workspace: they apply their own privacy rules and take `since`.
_WORKSPACE_VIEWS = ("goals", "changes")


class ViewError(ValueError):
    """A view was asked for something that does not exist (unknown cluster, school, metric...)."""


def _scope(engine: Engine, cluster: str | None, school: str | None) -> tuple[pd.DataFrame, list[str] | None]:
    schools = loads.load_schools(engine)
    if school is not None:
        if school not in set(schools["school_id"]):
            raise ViewError(f"school {school!r} not found")
        return schools, [school]
    if cluster is not None:
        if cluster not in set(schools["cluster"]):
            raise ViewError(f"cluster {cluster!r} not found")
        return schools, schools.loc[schools["cluster"] == cluster, "school_id"].tolist()
    return schools, None


def _metric_rows(engine: Engine, metric: str | None, years: list[int] | None, school_ids: list[str] | None,
                 group: str | None = None) -> pd.DataFrame:
    metrics = [metric] if metric else None
    groups = [group, "ALL"] if group else None
    rows = loads.load_metrics(engine, metrics=metrics, years=years, school_ids=school_ids, groups=groups)
    if metric in (None, "suspension_rate"):
        discipline = loads.load_discipline(engine, years=years, school_ids=school_ids)
        rows = metrics_with_suspension(rows, discipline)
        if group:
            rows = rows[rows["student_group"].isin(groups)]
    if metric and rows.empty and metric not in set(metric_catalog(loads.load_metric_definitions(engine)).index):
        raise ViewError(f"metric {metric!r} not found")
    return rows


def _directions(engine: Engine) -> dict[str, bool]:
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    return {m: bool(v) for m, v in catalog["higher_is_better"].items()}


def rates_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
               metric: str | None = None, group: str | None = None) -> pd.DataFrame:
    """School rows (with a school or cluster) plus pooled cluster rows (`cluster:NAME`) and `district`.

    The pooled rows are summed in the database (``analytics.data.aggregates``); only the school rows
    of a school or cluster scope are loaded row by row.
    """
    schools, ids = _scope(engine, cluster, school)
    parts = []
    if school is not None or cluster is not None:
        rows = _metric_rows(engine, metric, [year] if year else None, ids, group)
        if group:
            rows = rows[rows["student_group"] == group]
        parts.append(add_rate_columns(rows).merge(schools[["school_id", "cluster"]], on="school_id", how="left"))
    if school is None:
        pooled = _pooled_rows(engine, schools, ids, metric, year, group, by_cluster=True)
        pooled["school_id"] = "cluster:" + pooled["cluster"]
        parts.append(pooled)
        if cluster is None:
            district = _pooled_rows(engine, schools, ids, metric, year, group, by_cluster=False)
            district["school_id"] = "district"
            parts.append(district)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RATE_COLUMNS)
    extra = [c for c in ("cluster", "n_schools", "n_rows_left_out") if c in out]
    return out[RATE_COLUMNS + extra].sort_values(["school_id", "school_year", "metric", "student_group"],
                                                  ignore_index=True)


def _pooled_rows(engine: Engine, schools: pd.DataFrame, ids: list[str] | None, metric: str | None,
                 year: int | None, group: str | None, *, by_cluster: bool) -> pd.DataFrame:
    """Pooled rates per ([cluster,] year, metric, group): metric sums from SQL ``GROUP BY``, plus the
    derived suspension rate pooled from the (school x year x group) discipline rows when no
    `suspension_rate` was imported for this scope (as :func:`_metric_rows` decides)."""
    years = [year] if year else None
    counts = aggregates.pooled_metric_counts(engine, by_cluster=by_cluster, years=years,
                                             metrics=[metric] if metric else None,
                                             groups=[group] if group else None, school_ids=ids)
    load_groups = [group, "ALL"] if group else None
    unknown = metric and counts.empty and not aggregates.metric_present(engine, metric, years=years,
                                                                         groups=load_groups, school_ids=ids)
    if unknown and metric not in set(metric_catalog(loads.load_metric_definitions(engine)).index):
        raise ViewError(f"metric {metric!r} not found")
    if metric in (None, "suspension_rate") and not aggregates.metric_present(
            engine, "suspension_rate", years=years, groups=load_groups, school_ids=ids):
        discipline = loads.load_discipline(engine, years=years, school_ids=ids)
        if not discipline.empty:
            derived = suspension_metric_rows(discipline)
            if group:
                derived = derived[derived["student_group"] == group]
            keys = aggregates.POOL_KEYS
            if by_cluster:
                derived = derived.merge(schools[["school_id", "cluster"]], on="school_id")
                keys = ["cluster", *keys]
            counts = pd.concat([counts, pool_counts(derived, keys)], ignore_index=True)
    return rates_from_pooled_counts(counts)


def gaps_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
              metric: str | None = None, group: str | None = None, reference: str = "others") -> pd.DataFrame:
    """Gaps of each group against the reference, the change since the year before and its test.

    The rows returned are one family: their Benjamini-Hochberg q-values and labels are computed over
    exactly these rows (after the scope, year and group filters), as DESIGN §3 asks for an export.
    """
    _, ids = _scope(engine, cluster, school)
    rows = _metric_rows(engine, metric, None, ids)  # every year: the change needs the year before
    directions = _directions(engine)
    if reference == "district_all" and ids is not None:
        everyone = _metric_rows(engine, metric, None, None)
        table = gap_table(everyone, reference, directions, reference_year=year, label=False)
        table = table[table["school_id"].isin(ids)]
    else:
        table = gap_table(rows, reference, directions, reference_year=year, label=False)
    if year:
        table = table[table["school_year"] == year]
    if group:
        table = table[table["student_group"] == group]
    return label_gaps(table.reset_index(drop=True), directions)


def status_change_view(engine: Engine, year: int | None = None, cluster: str | None = None,
                       school: str | None = None, metric: str | None = None, group: str | None = None,
                       settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Status (this year's value), change from last year, levels and colour per school x group x metric."""
    schools, ids = _scope(engine, cluster, school)
    years = loads.available_years(engine)
    if not years:
        return pd.DataFrame(columns=STATUS_COLUMNS + ["denominator"])
    year = year or years[-1]
    rows = _metric_rows(engine, metric, [year - 1, year], ids)
    rows = add_rate_columns(rows) if not rows.empty else rows
    if group:
        rows = rows[rows["student_group"] == group]
    level_of = dict(zip(schools["school_id"], schools["level"], strict=True))
    out = status_change(rows[rows["school_year"] == year], rows[rows["school_year"] == year - 1], level_of,
                        _directions(engine), settings)
    return out.sort_values(["school_id", "metric", "student_group"], ignore_index=True)


def disproportionality_view(engine: Engine, year: int | None = None, cluster: str | None = None,
                            school: str | None = None, metric: str | None = None, group: str | None = None,
                            settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Risk ratios for every school in the district (the alternate ratio needs them), then filtered."""
    _, ids = _scope(engine, cluster, school)
    table = aggregates_discipline.scope_disproportionality(engine, ids, settings)
    if year:
        table = table[table["school_year"] == year]
    if group:
        table = table[table["student_group"] == group]
    return table[DISPRO_COLUMNS].reset_index(drop=True)


def rp_impact_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
                   metric: str | None = None, group: str | None = None,
                   settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The difference-in-differences summary: district-wide, or a cluster's RP schools or one RP school against
    the district's never-treated schools."""
    from analytics.learning.outcomes import RP_METRIC_OUTCOMES, rp_metric_impact

    if school is not None:
        schools, _ = _scope(engine, None, school)
        summary = rp_impact_for_school(schools, loads.load_discipline(engine), school, settings).summary
        scope = schools
    else:
        schools, ids = _scope(engine, cluster, None)
        scope = schools if ids is None else comparison_scope(schools, ids)
        summary = rp_impact(scope, loads.load_discipline(engine, school_ids=list(scope["school_id"])),
                            settings).summary
    # Beside suspensions: climate survey and chronic absence (DESIGN §10), by the same estimator.
    if len(summary) or school is None:
        metrics = loads.load_metrics(engine, metrics=list(RP_METRIC_OUTCOMES), groups=["ALL"],
                                     school_ids=None if school is not None else list(scope["school_id"]))
        beyond = rp_metric_impact(scope, metrics, school, settings=settings)
        summary = pd.concat([summary, beyond], ignore_index=True) if len(beyond) else summary
    return summary[SUMMARY_COLUMNS]


def run_chart_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
                   metric: str | None = None, group: str | None = None) -> pd.DataFrame:
    """Monthly incidents (suspensions when `metric` is `suspension_rate`) with median and signals."""
    _, ids = _scope(engine, cluster, school)
    incidents = loads.load_incidents(engine, school_ids=ids)
    actions = ["ISS", "OSS"] if metric == "suspension_rate" else None
    label = school or (f"cluster:{cluster}" if cluster else "district")
    series = monthly_incident_series(incidents, actions=actions, label=label)
    if year and not series.empty:
        start, end = pd.Timestamp(f"{year - 1}-08-01"), pd.Timestamp(f"{year}-07-31")
        series = series[(series["period"] >= start) & (series["period"] <= end)]
    if series.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    chart = run_chart(series[["period", "value"]])
    chart.insert(0, "school_id", label)
    chart["period"] = chart["period"].dt.strftime("%Y-%m")
    return chart[RUN_COLUMNS]


# The imported tables each view is computed from (any one of them is enough).
VIEW_SOURCES = {
    "rates": ("metrics", "discipline"),
    "gaps": ("metrics", "discipline"),
    "status-change": ("metrics", "discipline"),
    "disproportionality": ("discipline",),
    "rp-impact": ("discipline",),
    "run-chart": ("incidents",),
    "learning": ("pl_programs",),
    "goals": ("school_goals",),
}


def missing_data(present: dict[str, bool], sources: tuple[str, ...]) -> tuple[str, ...]:
    """The tables still to import before a view built from `sources` can have rows: the schools first,
    then `sources` when none of them holds a row; empty when nothing is missing. `present`: whether each
    table holds a row (:func:`analytics.data.loads.tables_present`)."""
    if not present.get("schools", False):
        return ("schools",)
    if sources and not any(present.get(name, False) for name in sources):
        return tuple(sources)
    return ()


def missing_text(missing: tuple[str, ...]) -> str:
    """"no schools imported yet (schools.csv)" or "no metrics or discipline data imported yet (...)"."""
    files = " or ".join(f"{name}.csv" for name in missing)
    what = "schools" if missing == ("schools",) else f"{' or '.join(missing)} data"
    return f"no {what} imported yet ({files})"


def why_empty(engine: Engine, view: str) -> str:
    """Why a view has no rows, in words a new user can act on."""
    missing = missing_data(loads.tables_present(engine), VIEW_SOURCES.get(view, ()))
    if not missing:
        return "no rows match these filters"
    return (f"{missing_text(missing)}: import with `python -m analytics import FILE`, or load the demo district "
            "with `python -m analytics demo`")


def learning_view(engine: Engine, year: int | None = None, cluster: str | None = None, school: str | None = None,
                  metric: str | None = None, group: str | None = None, program: str | None = None,
                  all_goals: bool = True, public: bool = False) -> pd.DataFrame:
    """The five-level evaluation of every PL programme (or `program`): `analytics.learning.load`.

    With ``all_goals`` level 5 is estimated for every goal metric, else for the main goal only; ``public``
    counts only shareable walkthroughs in level 4 (and so in the fidelity tertiles of level 5).
    """
    from analytics.learning.load import NotFound, learning_table

    try:
        return learning_table(engine, program, all_goals=all_goals, public=public)
    except NotFound as exc:
        raise ViewError(str(exc)) from exc


_BUILDERS = {
    "rates": rates_view,
    "gaps": gaps_view,
    "status-change": status_change_view,
    "disproportionality": disproportionality_view,
    "rp-impact": rp_impact_view,
    "run-chart": run_chart_view,
    "learning": learning_view,
}


def build_view(engine: Engine, name: str, *, year: int | None = None, cluster: str | None = None,
               school: str | None = None, metric: str | None = None, group: str | None = None,
               public: bool = False, settings: Settings = DEFAULT_SETTINGS, program: str | None = None,
               all_goals: bool = True, release: Release | None = None, since: str | None = None) -> pd.DataFrame:
    """The table behind a view by its CLI name; `public` applies the privacy rules (pass the district's
    `release` when building several views, to decide it once)."""
    if name in _WORKSPACE_VIEWS:
        from analytics.workspace import views as workspace

        builder = workspace.goals_view if name == "goals" else workspace.changes_view
        try:
            return builder(engine, year=year, cluster=cluster, school=school, metric=metric, group=group,
                           since=since, public=public, settings=settings)
        except workspace.WorkspaceViewError as exc:
            raise ViewError(str(exc)) from exc
    if name not in _BUILDERS:
        raise ViewError(f"unknown view {name!r}; use one of {', '.join(VIEWS)}")
    extra = {"program": program, "all_goals": all_goals, "public": public} if name == "learning" else {}
    table = _BUILDERS[name](engine, year=year, cluster=cluster, school=school, metric=metric, group=group, **extra)
    columns = list(table.columns)
    if name == "gaps":  # the exported columns; the rest of gap_table's stay until the privacy rules ran
        columns = GAP_COLUMNS + ["numerator", "denominator"] + ([] if public else ["ref_num", "ref_den"])
    if name == "status-change":
        columns = [c for c in columns if c != "denominator"]
    if public:
        cells = name in ("rates", "gaps", "status-change", "disproportionality")
        release = release if release is not None or not cells else release_for(engine, settings)
        if name == "status-change" and len(table):
            table = table.assign(school_year=year or loads.available_years(engine)[-1])
        table = release_view(table, name, release, settings, _directions(engine))
    table = table[[c for c in columns if c in table.columns]]
    return table.replace({np.inf: np.nan, -np.inf: np.nan})  # unbounded values are written empty
