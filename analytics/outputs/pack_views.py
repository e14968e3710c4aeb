"""What each view of a data-meeting pack shows: its table for people, its chart, the rows of its native
Excel chart, and its finding, all about the same scope and naming schools (DESIGN §5).

A pack view is a :class:`PackView` in :data:`PACK_VIEWS`. To add a sheet and slide kind (goals, changes,
a learning evaluation...), register one: ``register_pack_view("goals", PackView("School goals", table=...,
figure=..., finding=...))``; ``ViewSpec("goals", title, filters)`` then works in every writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS
from analytics.data import loads
from analytics.data.catalog import group_label, metric_catalog, school_labels
from analytics.outputs import charts_district, charts_equity
from analytics.outputs.labels import RATIO_TYPES, RP_OUTCOMES, counted, for_count, people_table, year_label
from analytics.outputs.vega import VegaLite
from analytics.outputs.views import build_view
from analytics.stats.gaps import gap_family
from analytics.stats.small_numbers import with_adjusted_rates

MIN_N = DEFAULT_SETTINGS.privacy_min_n
TOP_N = 25  # bars on one chart: more are unreadable on a slide

CODE_COLUMNS = ("school_id", "student_group", "metric", "outcome", "ratio_type", "trend", "signal", "color",
                "status_level", "change_level", "reference", "method", "period", "cluster", "flagged")


@dataclass
class Context:
    """Everything a pack view needs besides its table: names, labels and the view's filters."""

    engine: Engine
    schools: pd.DataFrame
    metric_names: dict[str, str]
    filters: dict
    public: bool = False  # a public pack: findings rank released values only, and say so

    @property
    def names(self) -> pd.Series:
        """School names, told apart by cluster only where the scope holds two schools of one name."""
        cluster = self.filters.get("cluster")
        if cluster and not self.filters.get("school"):
            return school_labels(self.schools[self.schools["cluster"] == cluster])
        return school_labels(self.schools)

    @property
    def scope(self) -> str:
        """The view's scope as people say it: "Lincoln ES", "North cluster" or "the district"."""
        school, cluster = self.filters.get("school"), self.filters.get("cluster")
        if school:
            return str(self.names.get(str(school), school))
        return f"{cluster} cluster" if cluster else "the district"

    def metric(self, fallback: str = "") -> str:
        metric = self.filters.get("metric") or fallback
        return self.metric_names.get(metric, metric)


@dataclass
class Figure:
    """A view's chart and the rows it draws (human headers; the first column names the categories).

    ``kind`` ("bar" or "line") asks for a native Excel chart of the ``series`` columns of ``data``. The chart is
    Altair's, or a Vega-Lite dict (:class:`analytics.outputs.vega.VegaLite`) read through the same attributes.
    """

    chart: alt.Chart | VegaLite | None
    data: pd.DataFrame
    kind: str | None = None
    series: list[str] = field(default_factory=list)
    x_title: str = ""
    y_title: str = ""


# (goals, progress rows) of a scope (cluster, school): every goal's progress already computed, sliced.
GoalProgressOf = Callable[[str | None, str | None], tuple[pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class PackView:
    title: str
    figure: Callable[[Context, pd.DataFrame], Figure | None]
    finding: Callable[[Context, pd.DataFrame], str]
    # (engine, filters, public, goal progress the caller holds or None); default: the view of DESIGN §7
    table: Callable[[Engine, dict, bool, GoalProgressOf | None], pd.DataFrame] | None = None
    sheet: str = ""  # a short sheet name (Excel allows 31 characters); default: the title

    @property
    def sheet_name(self) -> str:
        return (self.sheet or self.title)[:27]

    def build_table(self, engine: Engine, name: str, filters: dict, public: bool,
                    goal_progress: GoalProgressOf | None = None) -> pd.DataFrame:
        """The view's table. ``goal_progress``: the goal progress the caller holds, for the views that read it
        (what changed, goals) instead of computing it again; the others ignore it."""
        if self.table is not None:
            return self.table(engine, filters, public, goal_progress)
        return build_view(engine, name, public=public, **filters)

    def people(self, name: str, ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
        return people_table(name, table, ctx.schools, ctx.metric_names, ctx.names)


PACK_VIEWS: dict[str, PackView] = {}


def register_pack_view(name: str, view: PackView, first: bool = False) -> None:
    """Make a new kind of sheet and slide available to packs (see the module docstring); `first` puts it
    before every other view (packs list views in this order)."""
    if first:
        others = {k: v for k, v in PACK_VIEWS.items() if k != name}
        PACK_VIEWS.clear()
        PACK_VIEWS[name] = view
        PACK_VIEWS.update(others)
    else:
        PACK_VIEWS[name] = view


def numeric(table: pd.DataFrame) -> pd.DataFrame:
    """Suppressed marks become missing so a chart of a public table draws only released numbers."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object and col not in CODE_COLUMNS:
            out[col] = pd.to_numeric(out[col], errors="coerce")
    return out


def _latest(table: pd.DataFrame, ctx: Context) -> int | None:
    year = ctx.filters.get("year")
    years = pd.to_numeric(table.get("school_year", pd.Series(dtype=float)), errors="coerce").dropna()
    return int(year) if year else (int(years.max()) if len(years) else None)


def _pct(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.1f}%"


# --- rates --------------------------------------------------------------------------------------------


def _rate_rows(ctx: Context, table: pd.DataFrame) -> tuple[pd.DataFrame, str, float, str]:
    """The rows a rates chart compares for the scope, their category name, and the pooled reference."""
    t = numeric(table)
    year, group = _latest(t, ctx), ctx.filters.get("group") or "ALL"
    t = t[t["school_year"] == year]
    ids = t["school_id"].astype(str)
    school, cluster = ctx.filters.get("school"), ctx.filters.get("cluster")
    if school:
        rows = t[ids == str(school)].assign(label=lambda d: d["student_group"].map(group_label))
        reference = rows.loc[rows["student_group"] == "ALL", "value"]
        return rows, "Student group", float(reference.iloc[0]) if len(reference) else np.nan, "All students"
    t = t[t["student_group"] == group]
    ids = t["school_id"].astype(str)
    if cluster:
        rows = t[~ids.str.startswith("cluster:")].assign(label=lambda d: d["school_id"].astype(str).map(ctx.names))
        pooled = t.loc[ids == f"cluster:{cluster}", "value"]
        return rows, "School", float(pooled.iloc[0]) if len(pooled) else np.nan, "Cluster (pooled)"
    rows = t[ids.str.startswith("cluster:")].assign(label=lambda d: d["school_id"].str.removeprefix("cluster:"))
    district = t.loc[ids == "district", "value"]
    return rows, "Cluster", float(district.iloc[0]) if len(district) else np.nan, "District (pooled)"


def rates_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    rows, category, reference, ref_name = _rate_rows(ctx, table)
    rows = rows[~(rows["denominator"] < MIN_N)]
    rows = rows.dropna(subset=["value"]).sort_values("value", ascending=False).head(TOP_N)
    if rows.empty:
        return None
    metric = ctx.metric("Rate")
    year, group = _latest(numeric(table), ctx), ctx.filters.get("group") or "ALL"
    who = "" if ctx.filters.get("school") else f", {group_label(group).lower()}"
    value_col = f"{metric} (%)"
    chart = charts_district.ranked_bars(
        rows, "label", "value", f"{metric}: {ctx.scope}{who}, {year_label(year)}", value_col, category,
        reference=reference, reference_label=ref_name)
    data = pd.DataFrame({category: rows["label"], value_col: rows["value"], "95% CI low (%)": rows["ci_low"],
                         "95% CI high (%)": rows["ci_high"], "Students (n)": rows["denominator"]})
    return Figure(chart, data, "bar", [value_col], category, value_col)


def rates_finding(ctx: Context, table: pd.DataFrame) -> str:
    rows, category, reference, ref_name = _rate_rows(ctx, table)
    rows = rows.dropna(subset=["value"]).sort_values("value", ascending=False)
    rows = rows[~(rows["denominator"] < MIN_N)]  # the highest of 3 students says nothing
    metric = ctx.metric("the rate").lower()
    year = year_label(_latest(numeric(table), ctx))
    if rows.empty:
        return f"No released values of {metric} for {ctx.scope} in {year}."
    if ctx.filters.get("school"):
        return (f"{ctx.scope}, {year}: {metric} {_pct(reference)} for all students; highest group "
                f"{rows['label'].iloc[0]} ({_pct(rows['value'].iloc[0])}), lowest {rows['label'].iloc[-1]} "
                f"({_pct(rows['value'].iloc[-1])}).")
    top, bottom = rows.iloc[0], rows.iloc[-1]
    noun = "schools" if category == "School" else "clusters"
    if ctx.public:
        noun += " with released values (suppressed and coded values are not ranked)"
    how = ""
    if category == "School":  # small schools must not top or bottom the list by chance (DESIGN §3)
        adjusted, prior = with_adjusted_rates(rows)
        if prior is not None:
            adjusted = adjusted.sort_values("order_value", ascending=False, na_position="last")
            top, bottom = adjusted.iloc[0], adjusted.dropna(subset=["order_value"]).iloc[-1]
            how = " by empirical-Bayes adjusted rate (the published rates are shown)"
    return (f"{ctx.scope[0].upper() + ctx.scope[1:]}, {year}: {metric} {_pct(reference)} ({ref_name.lower()}, "
            f"pooled from counts). Across {len(rows)} {noun}, highest{how} {top['label']} ({_pct(top['value'])}), "
            f"lowest {bottom['label']} ({_pct(bottom['value'])}); Wilson 95% intervals in the table.")


# --- status and change --------------------------------------------------------------------------------


def status_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    rated = table[(table["status_level"] != "") & (table["change_level"] != "")]
    if rated.empty:
        return None
    metric = ctx.metric("Suspension rate")
    chart = charts_equity.status_grid(rated, f"{metric}: status and change, {ctx.scope}, "
                                             f"{year_label(ctx.filters.get('year'))}".rstrip(", "))
    cells = rated.assign(colour=rated["color"].replace("", "No colour")).groupby(
        ["status_level", "change_level", "colour"], as_index=False).size()
    data = cells.rename(columns={"status_level": "Status this year", "change_level": "Change from last year",
                                 "colour": "Colour", "size": "School groups"})
    return Figure(chart, data)


def status_finding(ctx: Context, table: pd.DataFrame) -> str:
    coloured = table[table["color"].astype(str) != ""]
    if coloured.empty:
        return f"No school group in {ctx.scope} has a status-and-change colour (n < 30 or no previous year)."
    order = ["Red", "Orange", "Yellow", "Green", "Blue"]
    counts = coloured["color"].value_counts()
    text = ", ".join(f"{c} {counts[c]}" for c in order if c in counts)
    red = coloured[coloured["color"] == "Red"]
    named = "; ".join(f"{ctx.names.get(str(s), s)} · {group_label(g)}"
                      for s, g in zip(red["school_id"].head(5), red["student_group"].head(5), strict=True))
    more = f" and {len(red) - 5} more" if len(red) > 5 else ""
    return (f"{ctx.metric('Suspension rate')} in {ctx.scope}, school groups by colour: {text}."
            + (f" Red: {named}{more}." if named else ""))


# --- gaps ---------------------------------------------------------------------------------------------


def _gap_rows(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    t = numeric(table)
    year = _latest(t, ctx)
    return t[(t["school_year"] == year)].dropna(subset=["gap"])


def gaps_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    rows = _gap_rows(ctx, table)
    if rows.empty:
        return None
    metric = ctx.metric("Gaps")
    chart = charts_equity.gap_trend(rows, f"{metric}, {ctx.scope}")
    means = rows.groupby("student_group", as_index=False).agg(gap=("gap", "mean"), schools=("gap", "size"))
    means = means.assign(label=means["student_group"].map(group_label)).sort_values("gap")
    value_col = "Gap vs reference (points, mean over schools)"
    data = pd.DataFrame({"Student group": means["label"], value_col: means["gap"], "Schools": means["schools"]})
    return Figure(chart, data, "bar", [value_col], "Student group", value_col)


def gaps_finding(ctx: Context, table: pd.DataFrame) -> str:
    rows = _gap_rows(ctx, table)
    if rows.empty:
        return f"No gaps could be computed for {ctx.scope}."
    sized = rows[pd.to_numeric(rows.get("denominator", rows["gap"]), errors="coerce") >= MIN_N]
    text = (f"{ctx.metric('Gaps')} in {ctx.scope}, {year_label(_latest(numeric(table), ctx))}: "
            f"{gap_family(table).summary}")
    if not sized.empty:
        widest = sized.loc[sized["gap"].abs().idxmax()]
        text += (f" Widest gap: {group_label(widest['student_group'])} at "
                 f"{ctx.names.get(str(widest['school_id']), widest['school_id'])}, {_pct(widest['value'])} vs "
                 f"{_pct(widest['reference_value'])} ({widest['gap']:+.1f} points).")
    return text


# --- disproportionality -------------------------------------------------------------------------------


def _ratio_rows(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    t = numeric(table)
    t = t[(t["outcome"] == "suspension") & (t["school_year"] == _latest(t, ctx))].dropna(subset=["risk_ratio"])
    one_school = bool(ctx.filters.get("school"))
    label = t["student_group"].map(group_label)
    if not one_school:
        label = t["school_id"].astype(str).map(ctx.names) + " · " + label
    return t.assign(label=label).sort_values("risk_ratio", ascending=False)


def dispro_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    rows = _ratio_rows(ctx, table).head(TOP_N)
    if rows.empty:
        return None
    category = "Student group" if ctx.filters.get("school") else "School and group"
    more = len(_ratio_rows(ctx, table)) > TOP_N
    chart = charts_equity.risk_ratio_bars(rows, title=f"Suspension risk ratios, {ctx.scope}, "
                                          f"{year_label(_latest(numeric(table), ctx))}" + (
                                              f" (highest {TOP_N})" if more else ""), label_field="label")
    data = pd.DataFrame({category: rows["label"], "Risk ratio": rows["risk_ratio"],
                         "Comparison group": rows["ratio_type"].map(RATIO_TYPES)})
    return Figure(chart, data, "bar", ["Risk ratio"], category, "Risk ratio")


def dispro_finding(ctx: Context, table: pd.DataFrame) -> str:
    flagged = table[table["flagged"].astype(str).str.lower() == "true"]
    pairs = flagged[["school_id", "student_group"]].drop_duplicates()
    named = "; ".join(f"{ctx.names.get(str(s), s)} · {group_label(g)}"
                      for s, g in zip(pairs["school_id"].head(5), pairs["student_group"].head(5), strict=True))
    text = (f"{counted(len(pairs), 'school group')} in {ctx.scope} {for_count(len(pairs), 'meets', 'meet')} the "
            "3-year rule (a risk ratio of 3.0 or more in 3 consecutive years)"
            + (f": {named}" + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "") if named else "") + ".")
    if (table["flagged"].astype(str) == "*").any():  # public packs withhold flags resting on suppressed years
        text += " Flags that rest on an earlier year's suppressed ratio are not shown."
    rows = _ratio_rows(ctx, table)
    if not rows.empty:
        top = rows.iloc[0]
        kind = " (alternate ratio)" if top["ratio_type"] == "alternate" else ""
        text += f" Highest suspension risk ratio: {top['label']}, {top['risk_ratio']:.2f}{kind}."
    return text


# --- restorative-practices impact ---------------------------------------------------------------------


def _event_study(ctx: Context) -> pd.DataFrame:
    """The event study of the view's own scope: one RP school or a cluster's RP schools against the district's
    never-treated schools, or the district."""
    from analytics.stats.rp_impact import rp_impact, rp_impact_for_cluster, rp_impact_for_school

    school, cluster = ctx.filters.get("school"), ctx.filters.get("cluster")
    if school:
        result = rp_impact_for_school(ctx.schools, loads.load_discipline(ctx.engine), school,
                                      outcomes=["suspension_rate"])
    elif cluster:
        result = rp_impact_for_cluster(ctx.schools, loads.load_discipline(ctx.engine), cluster,
                                       outcomes=["suspension_rate"])
    else:
        result = rp_impact(ctx.schools, loads.load_discipline(ctx.engine), outcomes=["suspension_rate"])
    events = result.event_study
    return events[events["outcome"] == "suspension_rate"] if "outcome" in events else events


def rp_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    events = _event_study(ctx)
    if events.empty:
        return None
    chart = charts_equity.event_study(events, title=f"Suspension rate: effect by years since RP start, {ctx.scope}")
    data = pd.DataFrame({"Years relative to start": events["rel_year"], "Estimate (points)": events["estimate"],
                         "95% CI low": events["ci_low"], "95% CI high": events["ci_high"]})
    if "n_schools" in events:
        data["RP schools"] = events["n_schools"].to_numpy()
    return Figure(chart, data, "line", ["Estimate (points)"], "Years relative to start", "Effect (points)")


def rp_finding(ctx: Context, table: pd.DataFrame) -> str:
    """The verdict follows the randomization p-value and the estimate's sign (DESIGN §3), for the scope."""
    from analytics.stats.did import interval_text

    t = numeric(table)
    rows = t[table["outcome"] == "suspension_rate"] if "outcome" in t else t
    outcome = RP_OUTCOMES["suspension_rate"]
    if rows.empty or not np.isfinite(rows["estimate"].iloc[0]):
        method = str(table["method"].iloc[0]) if len(table) else "no discipline data"
        return f"{outcome} in {ctx.scope}: not estimable ({method.removeprefix('not estimable: ')})."
    row = rows.iloc[0]
    moved = "fell" if row["estimate"] < 0 else "rose" if row["estimate"] > 0 else "did not move"
    verdict = ("unlikely to be chance alone." if row["p_value"] <= 0.05
               else "this could be chance: no change can be claimed.")
    small = " Few RP schools: read the interval, not the point." if row["n_rp_schools"] < 10 else ""
    return (f"{outcome} in {ctx.scope} {moved} by {abs(row['estimate']):.2f} at "
            f"{counted(row['n_rp_schools'], 'RP school')} against "
            f"{counted(row['n_comparison_schools'], 'comparison school')} "
            f"({interval_text(row['ci_low'], row['ci_high'])}; p = {row['p_value']:.3f}, {row['method']}); "
            f"{verdict}{small}")


# --- run chart ----------------------------------------------------------------------------------------


def _run_names(ctx: Context) -> tuple[str, str]:
    if ctx.filters.get("metric") == "suspension_rate":
        return "Suspensions (ISS + OSS)", "suspensions"
    return "Incidents", "incidents"


def run_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    t = numeric(table)
    if t.empty:
        return None
    what, _ = _run_names(ctx)
    chart = charts_equity.run_chart(t, title=f"{what} per month, {ctx.scope}", y_title=f"{what} per month")
    count = f"{what} in the month"
    data = pd.DataFrame({"Month": t["period"].astype(str), count: t["value"], "Median": t["median"],
                         "Signal": t["signal"].fillna("").replace("", "none")})
    return Figure(chart, data, "line", [count, "Median"], "Month", f"{what} per month")


def run_finding(ctx: Context, table: pd.DataFrame) -> str:
    t = numeric(table)
    _, noun = _run_names(ctx)
    if t.empty:
        return f"No student-level incident file for {ctx.scope}: no monthly series of {noun}."
    signals = int((t["signal"].fillna("") != "").sum())
    return (f"{noun.capitalize()} per month in {ctx.scope}: median {t['median'].iloc[0]:.0f} over {counted(len(t), 'month')}; "
            + (f"{counted(signals, 'month')} in a shift or trend signal." if signals else
               "no shift or trend signal: the variation looks like noise."))


for _name, _view in {
    "rates": PackView("Rates with 95% intervals", rates_figure, rates_finding, sheet="Rates"),
    "status-change": PackView("Status and change", status_figure, status_finding),
    "gaps": PackView("Gaps between student groups", gaps_figure, gaps_finding, sheet="Gaps"),
    "disproportionality": PackView("Discipline disproportionality (risk ratios)", dispro_figure, dispro_finding,
                                   sheet="Risk ratios"),
    "rp-impact": PackView("Restorative-practices impact", rp_figure, rp_finding, sheet="RP impact"),
    "run-chart": PackView("Run chart: suspensions per month", run_figure, run_finding, sheet="Run chart"),
}.items():
    register_pack_view(_name, _view)


def context(engine: Engine, filters: dict) -> Context:
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    return Context(engine, loads.load_schools(engine), dict(zip(catalog["metric"], catalog["label"], strict=True)),
                   filters)


# Sheets and slides of other concerns register themselves on import.
from analytics.learning import pack as _learning_pack  # noqa: E402, F401
