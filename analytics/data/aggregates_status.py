"""Status colours computed in the database: the school x metric x group cells that worsened to Orange or Red.

Each cell's values in the colour years and the years before them are put side by side (:func:`status_rows_parts`),
coloured by the status and change grid in SQL (:func:`status_rank_sql`: the colours
:func:`analytics.stats.status_change.status_change` gives), and only the cells that worsened are read
(:func:`worsened_colours`), so a district's status rows never reach pandas (DESIGN §8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import schema
from analytics.data.aggregates import suspension_derived
from analytics.data.aggregates_discipline import _discipline_all_rows, _outcome_count
from analytics.data.loads import _read

STATUS_KEYS = ["school_id", "metric", "student_group"]
# A colour as one character of the grid strings below: its rank (Blue 0 ... Red 4), "x" for no colour.
_RANKS = {"Blue": "0", "Green": "1", "Yellow": "2", "Orange": "3", "Red": "4", "": "x"}
RANK_COLORS = {rank: name for name, rank in _RANKS.items() if name}


def status_rows_parts(colour_years: Sequence[int], metrics: Sequence[str], *,
                      school_ids: Sequence[str] | None = None, min_n: int = DEFAULT_SETTINGS.status_min_n,
                      derived_suspension: bool = False,
                      keep: Callable[[sa.ColumnElement, sa.ColumnElement], sa.ColumnElement] | None = None,
                      changed_only: bool = False) -> list[sa.Select]:
    """Statements whose rows, together, are one row per school x metric x group with its value in each colour
    year and the year before it (``value_<year>``) and its denominator in each colour year
    (``denominator_<year>``), for the keys with at least ``min_n`` students in every colour year: the only rows
    :func:`analytics.stats.status_change.status_change` can colour in all of them.

    The value is :func:`analytics.stats.rates.add_rate_columns`'s: 100 x numerator / denominator in
    double precision when both counts are known and the denominator is positive, else the value given.
    The metrics rows of those years are joined year beside year on their key (:func:`_side_by_side`);
    ``derived_suspension`` adds the suspension rate from discipline counts as
    :func:`analytics.data.derived.suspension_metric_rows` makes it (students suspended, else with OSS, over
    enrolled; a missing ALL summed from races), turned into columns by ``MAX(CASE ...)`` (:func:`_by_key`).
    ``keep(value, metric)``: a condition on the latest colour year's imported rows, tested before any join.
    ``changed_only``: leave out the keys with no value the year before a colour year (no change, so no colour;
    of the metrics table, those with no row that year).
    """
    years = sorted({y for c in colour_years for y in (c - 1, c)})
    wide = [_side_by_side(years, colour_years, metrics, school_ids, min_n, keep, changed_only)]
    if derived_suspension:
        d, a = schema.discipline, _discipline_all_rows()
        no_value = sa.cast(sa.null(), sa.Float).label("value")
        own = sa.select(d.c.school_id, d.c.school_year, sa.literal("suspension_rate").label("metric"),
                        d.c.student_group, _outcome_count(d, "suspension").label("numerator"),
                        d.c.enrolled.label("denominator"), no_value).where(d.c.school_year.in_(years))
        summed = sa.select(a.c.school_id, a.c.school_year, sa.literal("suspension_rate").label("metric"),
                           sa.literal("ALL").label("student_group"), _outcome_count(a, "suspension").label("numerator"),
                           a.c.enrolled.label("denominator"), no_value).where(a.c.derived == 1,
                                                                                a.c.school_year.in_(years))
        if school_ids is not None:
            own = own.where(d.c.school_id.in_(list(school_ids)))
            summed = summed.where(a.c.school_id.in_(list(school_ids)))
        wide.append(_by_key(sa.union_all(own, summed).subquery("status_rows_1"), years, colour_years, min_n,
                            changed_only))
    return wide


def _rate(rows: sa.FromClause) -> sa.ColumnElement:
    """:func:`analytics.stats.rates.add_rate_columns`'s value of a row, in double precision."""
    counted = sa.and_(rows.c.numerator.is_not(None), rows.c.denominator > 0)
    return sa.case((counted, sa.cast(rows.c.numerator, sa.Float) * sa.literal(100.0, sa.Float)
                    / sa.cast(rows.c.denominator, sa.Float)), else_=rows.c.value)


def _side_by_side(years: list[int], colour_years: Sequence[int], metrics: Sequence[str],
                  school_ids: Sequence[str] | None, min_n: int,
                  keep: Callable[[sa.ColumnElement, sa.ColumnElement], sa.ColumnElement] | None = None,
                  changed_only: bool = False) -> sa.Select:
    """:func:`status_rows_parts` of the imported metrics rows: a key has one row a year (the table's unique
    key), so its years are joined side by side on it, from the latest colour year's rows (each on its year's
    partition on PostgreSQL): the colour years' rows with ``min_n`` students inner, the years before them
    outer (inner when ``changed_only``: the planner may then hash the fewer rows of the two). No sort or
    grouping of every row of those years (what :func:`_by_key` does)."""
    m = schema.metrics
    at = {y: m.alias(f"status_{y}") for y in years}
    base = at[max(colour_years)]
    joined, where = base, [base.c.school_year == max(colour_years), base.c.metric.in_(list(metrics)),
                           base.c.denominator >= min_n]
    if school_ids is not None:
        where.append(base.c.school_id.in_(list(school_ids)))
    if keep is not None:
        where.append(keep(_rate(base), base.c.metric))
    for year, rows in at.items():
        if rows is base:
            continue
        on = sa.and_(*[rows.c[k] == base.c[k] for k in STATUS_KEYS], rows.c.school_year == year,
                     rows.c.metric.in_(list(metrics)))
        if year in colour_years:
            joined, where = joined.join(rows, on), [*where, rows.c.denominator >= min_n]
        else:
            joined = joined.join(rows, on) if changed_only else joined.outerjoin(rows, on)
    columns = [_rate(at[y]).label(f"value_{y}") for y in years]
    columns += [at[y].c.denominator.label(f"denominator_{y}") for y in colour_years]
    return sa.select(*[base.c[k] for k in STATUS_KEYS], *columns).select_from(joined).where(*where)


def _by_key(rows: sa.Subquery, years: list[int], colour_years: Sequence[int], min_n: int,
            changed_only: bool = False) -> sa.Select:
    """:func:`status_rows_parts` of rows from a subquery (the suspension rate derived from discipline rows,
    some summed): one ``MAX(CASE ...)`` per year and column over each key's rows, grouped."""
    value = _rate(rows)

    def in_year(column: sa.ColumnElement, year: int) -> sa.ColumnElement:
        return sa.func.max(sa.case((rows.c.school_year == year, column)))

    keys = [rows.c[k] for k in STATUS_KEYS]
    columns = [in_year(value, y).label(f"value_{y}") for y in years]
    columns += [in_year(rows.c.denominator, y).label(f"denominator_{y}") for y in colour_years]
    having = [in_year(rows.c.denominator, y) >= min_n for y in colour_years]
    if changed_only:
        having += [in_year(value, y).is_not(None) for y in years if y not in colour_years]
    return sa.select(*keys, *columns).group_by(*keys).having(sa.and_(*having))


def _float(x: float) -> sa.ColumnElement:
    return sa.literal(x, sa.Float)


class _BoundsBelow(sa.sql.expression.ColumnElement):
    """How many of ascending ``bounds`` a value is above (NULL for NULL): on PostgreSQL the value's
    ``width_bucket`` among the doubles just above the bounds, which names the value once; elsewhere a ``CASE``
    that names it at each bound. PostgreSQL computes a rate at each place it is written, so the ``CASE`` of a
    status and a change level computed each cell's rates 13 times (a tenth of the worsened colours' time)."""

    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement),
                           ("bounds", InternalTraversal.dp_plain_obj)]
    type = sa.Integer()

    def __init__(self, value: sa.ColumnElement, bounds: Sequence[float]):
        self.value, self.bounds = value, tuple(float(b) for b in bounds)


@compiles(_BoundsBelow)
def _levels_below_case(element: _BoundsBelow, compiler, **kw) -> str:
    value, bounds = element.value, element.bounds
    case = sa.case(*[(value <= _float(b), i) for i, b in enumerate(bounds)], (value.is_not(None), len(bounds)))
    return compiler.process(case, **kw)


@compiles(_BoundsBelow, "postgresql")
def _levels_below_bucket(element: _BoundsBelow, compiler, **kw) -> str:
    above = [_float(math.nextafter(b, math.inf)) for b in element.bounds]  # v > b is v >= the next double
    return compiler.process(sa.func.width_bucket(element.value, postgresql.array(above)), **kw)


def _level_index(value: sa.ColumnElement, previous: sa.ColumnElement, cuts) -> tuple[sa.ColumnElement,
                                                                                      sa.ColumnElement]:
    """Status and change levels (0-4, NULL when missing) that :func:`analytics.stats.status_change.status_change`
    gives after rounding, from the raw value and change compared with the largest doubles that round to each
    cut point or below (:func:`analytics.stats.status_change.largest_rounding_to`): no rounding in SQL. A level
    is the number of those bounds the value or change is above (:class:`_BoundsBelow`)."""
    from analytics.stats.status_change import largest_rounding_to as at_most

    c0, c1, c2, c3 = cuts.change
    status, change = [at_most(b) for b in cuts.status], [at_most(c0), at_most(c1), at_most(c2, strict=True), at_most(c3)]
    if status == sorted(status) and change == sorted(change):
        return _BoundsBelow(value, status), _BoundsBelow(value - previous, change)
    # Cut points out of order: the grid's first bound from the bottom (status) or the top (change) that holds.
    moved = value - previous
    s = sa.case(*[(value <= _float(b), i) for i, b in enumerate(status)], (value.is_not(None), 4))
    c = sa.case(*[(moved > _float(b), 4 - i) for i, b in enumerate(change[::-1])], (moved.is_not(None), 0))
    return s, c


def status_rank_sql(value: sa.ColumnElement, previous: sa.ColumnElement, metric: sa.ColumnElement,
                    level: sa.ColumnElement, higher_is_better: dict[str, bool],
                    settings: Settings = DEFAULT_SETTINGS) -> sa.ColumnElement:
    """The colour rank (one character of :data:`RANK_COLORS`, "x" for no colour) that
    :func:`analytics.stats.status_change.status_change` gives a value, last year's value, a metric and a
    school level: the levels by the (metric, level) cut points (:meth:`Settings.cuts_for`), then the cell of
    the grid (:func:`analytics.stats.status_change.grid_color`) picked from a 25-character string.
    The group-size rule is the caller's; metrics without cut points get NULL."""
    from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS, grid_color

    grid = {way: "".join(_RANKS[grid_color(s, c, way)] for s in STATUS_LEVELS for c in CHANGE_LEVELS)
            for way in (False, True)}
    branches = []
    for name in sorted({m for m, _ in settings.status_cuts}):
        levels = sorted({lv for m, lv in settings.status_cuts if m == name and lv != "ES"})
        ways = grid[higher_is_better.get(name, True)]
        for lv, cuts in [*((lv, settings.cuts_for(name, lv)) for lv in levels), (None, settings.cuts_for(name, "ES"))]:
            if cuts is None:
                continue
            s, c = _level_index(value, previous, cuts)
            at = metric == name if lv is None else sa.and_(metric == name, level == lv)
            branches.append((at, sa.func.coalesce(sa.func.substr(sa.literal(ways), s * 5 + c + 1, 1), "x")))
    return sa.case(*branches, else_=sa.null())


def may_be_orange_or_red_sql(value: sa.ColumnElement, metric: sa.ColumnElement, higher_is_better: dict[str, bool],
                             settings: Settings = DEFAULT_SETTINGS) -> sa.ColumnElement:
    """Whether a value's status level lets some change make it Orange or Red at some school level of its metric
    (:func:`status_rank_sql`'s cut points): a test of one or two comparisons a metric, true of every cell that
    rank gives Orange or Red, so a year's rows that can never be are left out before the years are joined
    (about half of them; the grid's ``CASE`` then colours the others)."""
    from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS, grid_color
    from analytics.stats.status_change import largest_rounding_to as at_most

    branches = []
    for name in sorted({m for m, _ in settings.status_cuts}):
        way = higher_is_better.get(name, True)
        bad = [i for i, st in enumerate(STATUS_LEVELS) if any(grid_color(st, c, way) in ("Orange", "Red")
                                                                for c in CHANGE_LEVELS)]
        if not bad:
            continue
        low, high = min(bad), max(bad)
        if bad != list(range(low, high + 1)):  # not one run of levels: no test narrower than "has a value"
            branches.append(sa.and_(metric == name, value.is_not(None)))
            continue
        levels = {lv for m, lv in settings.status_cuts if m == name} | {"ES"}
        for cuts in {settings.cuts_for(name, lv) for lv in levels} - {None}:
            test = [value.is_not(None)]
            if low > 0:
                test.append(value > _float(at_most(cuts.status[low - 1])))
            if high < len(STATUS_LEVELS) - 1:
                test.append(value <= _float(at_most(cuts.status[high])))
            branches.append(sa.and_(metric == name, *test))
    return sa.or_(*branches) if branches else sa.false()


def worsened_statement(then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                       school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS,
                       derived_suspension: bool = False) -> sa.Select | sa.CompoundSelect:
    """:func:`worsened_statements` as one statement (their ``UNION ALL``), for ``EXPLAIN``."""
    parts = worsened_statements(then_year, now_year, higher_is_better, school_ids=school_ids, settings=settings,
                                derived_suspension=derived_suspension)
    return sa.union_all(*parts) if len(parts) > 1 else parts[0]


def worsened_statements(then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                        school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS,
                        derived_suspension: bool = False) -> list[sa.Select]:
    """Statements whose rows, together, are the school x metric x group cells whose colour is Orange or Red in
    ``now_year`` and a better colour in ``then_year`` (``school_id, metric, student_group, ranks``: the two
    colour ranks, now's and then's), one statement per part of :func:`status_rows_parts` (cells with
    ``settings.status_min_n`` students in both years, with their values of both years and the years before
    them), coloured in the database (:func:`status_rank_sql`): only the cells that worsened leave it. A
    school's level (``ES`` when unknown) picks the cut points.

    The grid's ``CASE`` over every metric is the costliest expression of the statement, so each part's rows are
    coloured where they are made (not after their union), each rank once a row (:func:`_fenced`: PostgreSQL
    computes an expression at each place it is written), and the two ranks are compared as one two-character
    code with the seven pairs that worsen. Now's rank alone is tested first: then's is computed for the cells
    Orange or Red now (about half of those joined)."""
    coloured = sorted({m for m, _ in settings.status_cuts})
    parts = status_rows_parts([then_year, now_year], coloured, school_ids=school_ids, min_n=settings.status_min_n,
                              derived_suspension=derived_suspension, changed_only=True,
                              keep=lambda value, metric: may_be_orange_or_red_sql(value, metric, higher_is_better,
                                                                                  settings))
    s = schema.schools
    level = sa.func.coalesce(s.c.level, "ES")
    worse = [f"{now}{then}" for now in "34" for then in "0123" if then < now]

    def worsened(part: sa.Select, name: str) -> sa.Select:
        wide = _fenced(part, name)  # each rate computed once a row, not at each place the ranks name it

        def rank(rows: sa.FromClause, year: int) -> sa.ColumnElement:
            return status_rank_sql(rows.c[f"value_{year}"], rows.c[f"value_{year - 1}"], rows.c.metric, rows.c.level,
                                   higher_is_better, settings)

        levelled = (sa.select(*wide.c, level.label("level"))
                    .select_from(wide.outerjoin(s, s.c.school_id == wide.c.school_id)).subquery(f"{name}_levelled"))
        now = _fenced(sa.select(*levelled.c, rank(levelled, now_year).label("now")), f"{name}_now")
        ranks = _fenced(sa.select(*[now.c[k] for k in STATUS_KEYS], now.c.now.concat(rank(now, then_year))
                                  .label("ranks")).where(now.c.now.in_(["3", "4"])), f"{name}_ranks")
        return sa.select(*ranks.c).where(ranks.c.ranks.in_(worse))

    return [worsened(part, f"wide_{i}") for i, part in enumerate(parts)]


def _fenced(stmt: sa.Select, name: str) -> sa.Subquery:
    """``stmt`` as a subquery whose columns are computed once a row: ``OFFSET 0`` keeps PostgreSQL from merging
    it into the statement around it, which would write each of its expressions again at every place that names
    the column (a colour rank tested, concatenated and returned was computed three times)."""
    return stmt.offset(0).subquery(name)


# PostgreSQL's settings for a district's worsened colours: the planner joins the years' 773,000 rows each (10,000
# schools) by memoized index lookups, which it prices below hashing, though the estimates are close (568,000 rows)
# and extended statistics on the key change nothing; each year's rows hashed in memory took a quarter of the time.
# Merged in the key's order as each year's key holds them (index-only scans, `schema.POSTGRESQL_KEY_INCLUDE`), a
# district's statement takes 1.4 s of the server's CPU instead of 2.4 hashed; the planner prices the merge above
# the hash, and with no sort the merge of ordered scans is the plan left. Parallel workers hashed the years again,
# for CPU time the view's other reads wait for on a busy server (both parts: 3.35 s of it, 1.95 s merged serially).
# JIT compiling the grid's CASE cost more than it saved. A cluster's few schools keep the lookups.
YEAR_JOIN_PLANNER = {"enable_nestloop": "off", "enable_sort": "off", "max_parallel_workers_per_gather": "0",
                     "work_mem": "64MB", "jit": "off"}


def worsened_colours(engine: Engine, then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                     school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The cells of :func:`worsened_statements` (``school_id, metric, student_group, color, color_then``,
    colour names), the derived suspension rate included when none was imported for these years and schools
    (as :func:`analytics.outputs.views._metric_rows` decides): a district's worsened colours without sending
    its status rows to pandas. The parts are read at once, each on its own connection."""
    years = sorted({then_year - 1, then_year, now_year - 1, now_year})
    derived = suspension_derived(engine, years=years, school_ids=school_ids)
    parts = worsened_statements(then_year, now_year, higher_is_better, school_ids=school_ids, settings=settings,
                                derived_suspension=derived)
    planner = YEAR_JOIN_PLANNER if school_ids is None else None
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="colours") as reads:  # PostgreSQL would
        found = list(reads.map(lambda part: _read(engine, part, planner), parts))  # run a union's parts in turn
    rows = pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]
    if rows.empty:
        return pd.DataFrame(columns=[*STATUS_KEYS, "color", "color_then"])
    return rows[STATUS_KEYS].assign(color=rows["ranks"].str[0].map(RANK_COLORS),
                                    color_then=rows["ranks"].str[1].map(RANK_COLORS))
