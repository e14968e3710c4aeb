"""Aggregates of the discipline and incidents tables computed in the database (DESIGN §8).

What the discipline, equity and restorative-practices views read, summed with ``GROUP BY`` (SQLAlchemy Core, the
same statements on SQLite and PostgreSQL) instead of sending every school's rows to pandas: the district's risks
behind the alternate risk ratio, the sums a scope's discipline page pools, the groups that can be flagged and the
rows their ratios read, the RP outcome rows and incidents per month. A school-year without an ALL row has one
summed from its race rows (:func:`_discipline_all_rows`), as :func:`analytics.data.derived.discipline_with_all`
makes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import loads, schema
from analytics.data.catalog import RACE_GROUPS
from analytics.data.loads import _read
from analytics.stats import disproportionality

# The count behind each disproportionality outcome (analytics.stats.disproportionality.OUTCOMES).
_OUTCOME_COLUMNS = {"iss": "students_iss", "oss": "students_oss", "expulsion": "students_expelled",
                    "law_referral": "law_referrals"}


def _known_sum(column: sa.ColumnElement) -> sa.ColumnElement:
    """The sum of a column, NULL when any summed value is NULL (a partial sum would understate it)."""
    return sa.case((sa.func.count(column) == sa.func.count(), sa.func.sum(column)), else_=None)


def _has_all_row(d: sa.Table) -> sa.Exists:
    """Whether the school-year of a discipline row has an ALL row of its own."""
    other = d.alias("has_all")
    return sa.exists().where(other.c.school_id == d.c.school_id, other.c.school_year == d.c.school_year,
                             other.c.student_group == "ALL")


def _discipline_all_rows() -> sa.Subquery:
    """Each school-year's ALL row: the imported one, or the sum of its race rows when it has none
    (:func:`analytics.data.derived.discipline_with_all`; ``derived`` 1); one count column per outcome, and OSS days."""
    d = schema.discipline
    counted = ["enrolled", "students_suspended", *_OUTCOME_COLUMNS.values(), "oss_days"]
    imported = (sa.select(d.c.school_id, d.c.school_year, *[d.c[c] for c in counted], sa.literal(0).label("derived"))
                .where(d.c.student_group == "ALL"))
    has_all = _has_all_row(d)
    derived = (sa.select(d.c.school_id, d.c.school_year, *[_known_sum(d.c[c]).label(c) for c in counted],
                         sa.literal(1).label("derived"))
               .where(d.c.student_group.in_(list(RACE_GROUPS)), sa.not_(has_all))
               .group_by(d.c.school_id, d.c.school_year))
    return sa.union_all(imported, derived).subquery("all_rows")


def _outcome_count(table: sa.FromClause, outcome: str) -> sa.ColumnElement:
    if outcome == "suspension":  # students suspended, or students with OSS where that is empty
        return sa.func.coalesce(table.c.students_suspended, table.c.students_oss)
    return table.c[_OUTCOME_COLUMNS[outcome]]


def district_risks_statements(outcomes: Sequence[str], years: Sequence[int] | None = None) -> tuple[sa.Select,
                                                                                                    sa.Select]:
    """(per year and group, per year) sums behind the district risks, every outcome in one pass each.

    Per year and group: the part of the district's ALL that is group g's, over schools whose ALL count
    is known (g's own counts where known, the whole school's where not), and how many schools that is
    (``n_<outcome>``). Per year: the district's ALL sums over the schools whose ALL counts are known.
    ``years``: only those years (each year's sums are its own).
    """
    d, a = schema.discipline, _discipline_all_rows()
    removed, totals = [], []
    for outcome in outcomes:
        all_count, g_count = _outcome_count(a, outcome), _outcome_count(d, outcome)
        known_all = sa.and_(a.c.enrolled.is_not(None), all_count.is_not(None))
        g_known = sa.and_(g_count.is_not(None), d.c.enrolled.is_not(None))
        removed += [
            sa.func.sum(sa.case((sa.and_(known_all, g_known), g_count), (known_all, all_count))).label(f"out_count_{outcome}"),
            sa.func.sum(sa.case((sa.and_(known_all, g_known), d.c.enrolled), (known_all, a.c.enrolled)))
            .label(f"out_enrolled_{outcome}"),
            sa.func.sum(sa.case((known_all, 1), else_=0)).label(f"n_{outcome}"),
        ]
        totals += [sa.func.sum(sa.case((known_all, all_count))).label(f"all_count_{outcome}"),
                   sa.func.sum(sa.case((known_all, a.c.enrolled))).label(f"all_enrolled_{outcome}")]
    by_group = (sa.select(d.c.school_year, d.c.student_group, *removed)
                .select_from(d.join(a, sa.and_(a.c.school_id == d.c.school_id, a.c.school_year == d.c.school_year)))
                .where(d.c.student_group != "ALL")
                .group_by(d.c.school_year, d.c.student_group).order_by(d.c.school_year, d.c.student_group))
    by_year = sa.select(a.c.school_year, *totals).group_by(a.c.school_year)
    if years is not None:
        by_group = by_group.where(d.c.school_year.in_(list(years)), a.c.school_year.in_(list(years)))
        by_year = by_year.where(a.c.school_year.in_(list(years)))
    return by_group, by_year


# What the restorative-practices outcomes read (analytics.stats.rp_impact.outcome_panel): the ALL row and
# the groups of its risk ratios, with the counts behind the suspension rate and OSS days.
RP_GROUPS = ("ALL", "BL", "WH", "SWD")
RP_COUNTS = ("enrolled", "students_suspended", "students_oss", "oss_days")


def rp_outcome_rows_statement(school_ids: Sequence[str] | None = None) -> sa.Select:
    """The ALL, BL, WH and SWD rows, and the race rows of school-years without an ALL row (the panel sums
    them into one, DESIGN §2), with only the counts the RP outcomes use: a fifth of the table's cells."""
    d = schema.discipline
    has_all = _has_all_row(d)
    stmt = sa.select(d.c.school_id, d.c.school_year, d.c.student_group, *[d.c[c] for c in RP_COUNTS]).where(
        sa.or_(d.c.student_group.in_(list(RP_GROUPS)),
               sa.and_(d.c.student_group.in_(list(RACE_GROUPS)), sa.not_(has_all))))
    return stmt.where(d.c.school_id.in_(list(school_ids))) if school_ids is not None else stmt


# PostgreSQL's settings for the RP outcome rows: the planner prices the ALL-row test of every race row far above
# its hashed cost (6 M for 320,000 rows at 10,000 schools), and JIT-compiles the read: 1.5 s of its 2.6 s.
RP_ROWS_PLANNER = {"jit": "off"}


def rp_outcome_rows(engine: Engine, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Discipline rows for :func:`analytics.stats.rp_impact.outcome_panel` (of `school_ids`, default every
    school): the same panel as from the whole table, which it reads only through these rows and counts."""
    df = _read(engine, rp_outcome_rows_statement(school_ids), RP_ROWS_PLANNER)
    if df.empty:
        df = pd.DataFrame(columns=["school_id", "school_year", "student_group", *RP_COUNTS])
    return loads._typed("discipline", df)


# The counts the discipline page pools by group (the suspension rate reads students_suspended itself here).
SCOPE_COUNTS = ("students_suspended", "students_iss", "students_oss", "students_expelled", "law_referrals")


def discipline_scope_statement(school_ids: Sequence[str] | None = None, by_cluster: bool = False) -> sa.Select:
    """Sums per year and group of some schools' discipline rows (default every school), ALL completed from
    race rows where missing (:func:`_discipline_all_rows`): what the discipline page pools, so no view holds
    the schools' rows.

    For each count c: ``c`` and ``c_enrolled`` summed over the rows where c is known (a pooled rate), and
    ``n_c`` those rows; ``enrolled`` and ``suspended`` over every row (shares of enrolment and of suspended
    students); ``s`` and ``s_enrolled`` over the rows whose suspension count (students suspended, else with
    OSS) and enrolment are known, ``n_s`` those rows; ``n_oss_days``; ``derived`` ALL rows summed from races
    and ``derived_unknown`` those whose suspension count is unknown.

    With ``by_cluster`` the rows are joined to their school's cluster and summed per cluster too (``cluster``
    first): every column is a sum or a count, so a cluster's rows are those of its schools' own statement.
    """
    d, a = schema.discipline, _discipline_all_rows()
    counts = [*SCOPE_COUNTS, "oss_days"]
    alls = sa.select(a.c.school_id, a.c.school_year, sa.literal("ALL").label("student_group"), a.c.enrolled,
                     *[a.c[c] for c in counts], a.c.derived)
    groups = sa.select(d.c.school_id, d.c.school_year, d.c.student_group, d.c.enrolled, *[d.c[c] for c in counts],
                       sa.literal(0).label("derived")).where(d.c.student_group != "ALL")
    if school_ids is not None:
        alls, groups = (q.where(q.selected_columns.school_id.in_(list(school_ids))) for q in (alls, groups))
    r = sa.union_all(alls, groups).subquery("scope_rows")
    susp = sa.func.coalesce(r.c.students_suspended, r.c.students_oss)
    known_s = sa.and_(susp.is_not(None), r.c.enrolled.is_not(None))
    sums = []
    for c in SCOPE_COUNTS:
        sums += [sa.func.sum(r.c[c]).label(c), sa.func.sum(sa.case((r.c[c].is_not(None), r.c.enrolled))).label(f"{c}_enrolled"),
                 sa.func.count(r.c[c]).label(f"n_{c}")]
    keys = [r.c.school_year, r.c.student_group]
    source: sa.FromClause = r
    if by_cluster:
        s = schema.schools
        keys, source = [s.c.cluster, *keys], r.join(s, s.c.school_id == r.c.school_id)
    return (sa.select(*keys, *sums, sa.func.count(r.c.oss_days).label("n_oss_days"),
                      sa.func.sum(r.c.enrolled).label("enrolled"), sa.func.sum(r.c.students_suspended).label("suspended"),
                      sa.func.sum(sa.case((known_s, susp))).label("s"),
                      sa.func.sum(sa.case((known_s, r.c.enrolled))).label("s_enrolled"),
                      sa.func.sum(sa.case((known_s, 1), else_=0)).label("n_s"),
                      sa.func.sum(r.c.derived).label("derived"),
                      sa.func.sum(sa.case((sa.and_(r.c.derived == 1, susp.is_(None)), 1), else_=0)).label("derived_unknown"))
            .select_from(source).group_by(*keys).order_by(*keys))


def discipline_scope_sums(engine: Engine, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`discipline_scope_statement` read as numbers: a sum over no known value is 0, as pandas sums
    (rows per year and group: a few hundred, whatever the number of schools)."""
    return _scope_sums(engine, discipline_scope_statement(school_ids), ["school_year", "student_group"])


def discipline_cluster_sums(engine: Engine) -> pd.DataFrame:
    """:func:`discipline_scope_sums` of every cluster's schools in one grouped read (``cluster`` first, rows in
    cluster, year and group order): a cluster's rows, without the column, are those of its schools' own read."""
    return _scope_sums(engine, discipline_scope_statement(by_cluster=True), ["cluster", "school_year", "student_group"])


def _scope_sums(engine: Engine, stmt: sa.Select, keys: list[str]) -> pd.DataFrame:
    df = _read(engine, stmt)
    names = [c.name for c in stmt.selected_columns][len(keys):]
    if df.empty:
        df = pd.DataFrame(columns=[*keys, *names])
    df[names] = df[names].apply(lambda col: pd.to_numeric(col).astype("float64")).fillna(0.0)
    df = df.astype({"school_year": "int64"})
    return loads.in_byte_order(df, keys) if "cluster" in keys else df


def discipline_outcomes(engine: Engine) -> tuple[str, ...]:
    """The disproportionality outcomes with a known count anywhere in the discipline table: one ``EXISTS`` each,
    which stops at the first known count (counting them read every row: 0.13 s of the database's time at
    10,000 schools, in every district risks)."""
    d = schema.discipline
    outcomes = {"suspension": _outcome_count(d, "suspension"), **{o: d.c[c] for o, c in _OUTCOME_COLUMNS.items()}}
    with engine.connect() as conn:
        row = conn.execute(sa.select(*[sa.exists().where(col.is_not(None)).label(o)
                                       for o, col in outcomes.items()])).one()
    return tuple(o for o in outcomes if row._mapping[o])


# PostgreSQL's settings for the district risks' sums per year and group: the planner estimates the group rows
# joined to their ALL rows at 9,150 (461,000 for four years at 10,000 schools), so it sorts them, on disk, to group
# them; hashed into the few dozen groups in memory the statement took a fifth less time (0.86 s instead of 1.08,
# best of six). JIT compiling would cost more than the statement once sorting is priced out.
# Both this and the sums per year are read by one process: their test of each race row for its school-year's ALL
# row was shared with two parallel workers, which cost more CPU than they saved and, beside a view's other reads on
# a busy server, more time too (at 10,000 schools 0.55-0.6 s of the server's CPU instead of 0.68, and 0.11 instead
# of 0.19 for the sums per year).
SERIAL_PLANNER = {"max_parallel_workers_per_gather": "0"}
RISK_SUMS_PLANNER = {"enable_sort": "off", "work_mem": "64MB", "jit": "off", **SERIAL_PLANNER}


def district_risks(engine: Engine, years: Sequence[int] | None = None) -> disproportionality.DistrictRisks:
    """:func:`analytics.stats.disproportionality.district_risks` of the whole district, summed by the
    database: a few rows per year, group and outcome instead of every school's discipline rows (of
    ``years`` only, when given; the outcomes are the whole table's either way)."""
    outcomes = discipline_outcomes(engine)
    columns = ["school_year", "outcome", "student_group", "district_comparison_risk"]
    if not outcomes:
        return disproportionality.DistrictRisks(outcomes, pd.DataFrame(columns=columns))
    by_group, by_year = district_risks_statements(outcomes, years)
    removed, totals = _read(engine, by_group, RISK_SUMS_PLANNER), _read(engine, by_year, SERIAL_PLANNER)
    frames = []
    for outcome in outcomes:
        sums = removed[removed[f"n_{outcome}"].astype("int64") > 0]  # groups of schools with a known ALL
        sums = sums.merge(totals[["school_year", f"all_count_{outcome}", f"all_enrolled_{outcome}"]],
                          on="school_year", how="left")
        number = {k: pd.to_numeric(sums[f"{k}_{outcome}"]).astype("float64")
                  for k in ("out_count", "out_enrolled", "all_count", "all_enrolled")}
        count = number["all_count"] - number["out_count"]
        enrolled = number["all_enrolled"] - number["out_enrolled"]
        frames.append(pd.DataFrame({"school_year": sums["school_year"].astype("int64"), "outcome": outcome,
                                    "student_group": sums["student_group"],
                                    "district_comparison_risk": 100 * count / enrolled.where(enrolled > 0)}))
    return disproportionality.DistrictRisks(outcomes, pd.concat(frames, ignore_index=True)[columns])


def scope_disproportionality(engine: Engine, school_ids: Sequence[str] | None = None,
                             settings: Settings = DEFAULT_SETTINGS, years: Sequence[int] | None = None,
                             groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """Disproportionality of some schools (every school when None): only their discipline rows are read,
    and the alternate ratio's district risks are summed by the database (:func:`district_risks` of `years`).

    ``years`` reads only those years: each year's ratios are its own, and a year's 3-year flag is right when
    the two years before it are read too (a year left out breaks a run, as a missing year does). ``groups``
    (``school_id, student_group``) computes only those groups of their schools: a group's ratios need its
    own rows and its school's ALL row alone (:func:`analytics.stats.disproportionality.disproportionality`)."""
    if groups is not None:
        school_ids = sorted(set(groups["school_id"]))
    if school_ids is None or not len(school_ids):  # every school (no alternate ratio), or none: no risks summed
        return disproportionality.disproportionality(loads.load_discipline(engine, school_ids=school_ids,
                                                                           years=years), settings, groups=groups)
    # The district's risks are summed by the database on a connection of their own while the rows are read
    # (2.4 s and 1.5 s for every school that can be flagged at 10,000 schools).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="risks") as reads:
        risks = reads.submit(district_risks, engine, years).result
        rows = loads.load_discipline(engine, school_ids=school_ids, years=years)
        return disproportionality.disproportionality(rows, settings, district=risks() if len(rows) else None,
                                                     groups=groups)


def flag_candidate_statement(year: int, settings: Settings = DEFAULT_SETTINGS,
                             school_ids: Sequence[str] | None = None) -> sa.Select:
    """SELECT school_id, student_group of the groups that can have a risk-ratio flag in `year`
    (:func:`flag_candidate_groups`)."""
    d = schema.discipline
    cell = settings.cell_size
    years = [year - back for back in range(settings.consecutive_years)]
    counts = [_outcome_count(d, "suspension"), *(d.c[c] for c in _OUTCOME_COLUMNS.values())]
    stmt = (sa.select(d.c.school_id, d.c.student_group)
            .where(d.c.school_year.in_(years), d.c.student_group != "ALL", d.c.enrolled >= settings.n_size,
                   sa.or_(*[c >= cell for c in counts]))
            .group_by(d.c.school_id, d.c.student_group)
            .having(sa.func.count(sa.distinct(d.c.school_year)) == len(years)))
    if school_ids is not None:
        stmt = stmt.where(d.c.school_id.in_(list(school_ids)))
    return stmt


def flag_candidate_groups(engine: Engine, year: int, settings: Settings = DEFAULT_SETTINGS,
                          school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The groups (``school_id, student_group``, not ALL; of `school_ids`, default every school) that can have
    a risk-ratio flag in `year`: a flag needs a ratio in each of the ``settings.consecutive_years`` years up
    to `year`, and a ratio needs the group's row to have ``n_size`` students enrolled and an outcome count of
    ``cell_size`` (:func:`analytics.stats.disproportionality.disproportionality`). One grouped read; a group
    without such a row in every one of those years has no flag to compute."""
    with engine.connect() as conn:
        rows = conn.execute(flag_candidate_statement(year, settings, school_ids)).all()
    return pd.DataFrame(rows, columns=["school_id", "student_group"])


# The discipline columns a risk ratio reads (:func:`analytics.stats.disproportionality.disproportionality`).
RATIO_COLUMNS = ("enrolled", "students_suspended", *_OUTCOME_COLUMNS.values())


def flag_candidate_rows_statement(year: int, years: Sequence[int], settings: Settings = DEFAULT_SETTINGS,
                                  school_ids: Sequence[str] | None = None) -> sa.CompoundSelect:
    """The discipline rows of `years` that the ratios of `year`'s candidate groups read
    (:func:`flag_candidate_statement`, joined as a CTE): those groups' own rows and their schools' ALL rows,
    summed from race rows where a school-year has none (:func:`_discipline_all_rows`), in one read."""
    d, a = schema.discipline, _discipline_all_rows()
    candidates = flag_candidate_statement(year, settings, school_ids).cte("candidates")
    of_candidate = sa.and_(d.c.school_id == candidates.c.school_id, d.c.student_group == candidates.c.student_group)
    group_rows = (sa.select(d.c.school_id, d.c.school_year, d.c.student_group, *[d.c[c] for c in RATIO_COLUMNS])
                  .select_from(d.join(candidates, of_candidate)).where(d.c.school_year.in_(list(years))))
    all_rows = (sa.select(a.c.school_id, a.c.school_year, sa.literal("ALL").label("student_group"),
                          *[a.c[c] for c in RATIO_COLUMNS])
                .where(a.c.school_year.in_(list(years)), a.c.school_id.in_(sa.select(candidates.c.school_id))))
    return sa.union_all(group_rows, all_rows)


def flag_candidate_rows(engine: Engine, year: int, years: Sequence[int], settings: Settings = DEFAULT_SETTINGS,
                        school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`flag_candidate_rows_statement`'s rows as discipline rows (counts as float): every ALL row their
    ratios need is there, so :func:`analytics.stats.disproportionality.disproportionality` of them is the
    candidate groups' part of the whole table's (at 10,000 schools 0.08 M rows instead of every row of
    the candidates' schools, 0.19 M, and no list of schools or groups sent back to the database)."""
    # One process (:data:`SERIAL_PLANNER`): 0.37 s of the server's CPU for a district at 10,000 schools instead of 0.46.
    rows = _read(engine, flag_candidate_rows_statement(year, years, settings, school_ids), SERIAL_PLANNER)
    if rows.empty:
        rows = pd.DataFrame(columns=["school_id", "school_year", "student_group", *RATIO_COLUMNS])
    return loads._typed("discipline", rows)


def discipline_groups(engine: Engine) -> list[str]:
    """The student groups of the discipline table, with ``ALL`` when race rows let it be derived
    (:func:`analytics.data.derived.discipline_with_all`), sorted."""
    d = schema.discipline
    with engine.connect() as conn:
        groups = set(conn.execute(sa.select(d.c.student_group).distinct()).scalars())
    if groups & set(RACE_GROUPS):
        groups.add("ALL")
    return sorted(groups)


def discipline_school_ids(engine: Engine, school_ids: Sequence[str] | None = None) -> list[str]:
    """The schools with discipline rows (of `school_ids`, default every school), sorted: one ``DISTINCT``."""
    d = schema.discipline
    stmt = sa.select(d.c.school_id).distinct()
    if school_ids is not None:
        stmt = stmt.where(d.c.school_id.in_(list(school_ids)))
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def discipline_years(engine: Engine) -> list[int]:
    """The school years of the discipline table, sorted (:func:`analytics.data.loads.years_statement`: its
    partitions on PostgreSQL, a loose index scan of ``ix_discipline_year`` elsewhere, never every row)."""
    return loads.table_years(engine, "discipline")


def disproportionality_parts(engine: Engine, school_ids: Sequence[str] | None = None,
                             settings: Settings = DEFAULT_SETTINGS, district: disproportionality.DistrictRisks | None = None,
                             schools_per_part: int = 250,
                             years: Sequence[int] | None = None) -> Iterator[pd.DataFrame]:
    """:func:`analytics.stats.disproportionality.disproportionality_parts` of some schools (default: every
    school) with each part's discipline rows read from the database when it is computed, so neither the
    district's table nor its rows are ever held at once; the alternate ratio's district risks are summed
    by the database (:func:`district_risks`) unless given. ``years``: only their rows (as
    :func:`scope_disproportionality` reads them)."""
    ids = discipline_school_ids(engine, school_ids)
    if not ids:
        yield disproportionality.disproportionality(loads.load_discipline(engine, school_ids=[]), settings)
        return
    district = district if district is not None else district_risks(engine, years)
    parts = (loads.load_discipline(engine, school_ids=ids[start:start + schools_per_part], years=years)
             for start in range(0, len(ids), schools_per_part))
    yield from disproportionality.disproportionality_of_parts(parts, district, settings)


def discipline_part_statement(school_ids: Sequence[str]) -> sa.Select:
    """The read of one part's discipline rows (:func:`disproportionality_parts`), for ``EXPLAIN``."""
    return loads._filtered(schema.discipline, school_id=list(school_ids))


def monthly_incidents_statement(actions: Sequence[str] | None = None,
                                school_ids: Sequence[str] | None = None, *, by_school: bool = False,
                                by_cluster: bool = False) -> sa.Select:
    """SELECT [school or cluster,] year, month, incidents ... GROUP BY [the school or its cluster and] the
    incident date's calendar month (``EXTRACT``, which SQLAlchemy renders as ``strftime`` on SQLite);
    filtered on the school first (``ix_incidents_school_date``)."""
    i, s = schema.incidents, schema.schools
    year, month = sa.extract("year", i.c.incident_date), sa.extract("month", i.c.incident_date)
    keys = [i.c.school_id] if by_school else [s.c.cluster] if by_cluster else []
    # Cast to integers (PostgreSQL's EXTRACT is numeric and COUNT bigint), so a district's counts are read as CSV.
    stmt = sa.select(*keys, *[sa.cast(x, sa.Integer).label(name) for x, name in ((year, "year"), (month, "month"),
                                                                                 (sa.func.count(), "incidents"))])
    if by_cluster:
        stmt = stmt.select_from(i.join(s, s.c.school_id == i.c.school_id))
    if actions is not None:
        stmt = stmt.where(i.c.action.in_(list(actions)))
    if school_ids is not None:
        stmt = stmt.where(i.c.school_id.in_(list(school_ids)))
    return stmt.group_by(*keys, year, month)


# PostgreSQL's settings for the incidents counted per month: with its default 4 MB of memory the planner sorts a
# district's 0.64 M suspensions (10,000 schools) on disk by school and month, in three processes (1.1 s); hashed
# into their 0.14 M school-months in memory, in one process, they take 0.65 s and a third of the CPU time.
MONTH_COUNTS_PLANNER = {"work_mem": "64MB"}


def monthly_incident_counts(engine: Engine, *, actions: Sequence[str] | None = None,
                            school_ids: Sequence[str] | None = None, by_school: bool = False,
                            by_cluster: bool = False) -> pd.Series:
    """Incidents per calendar month (a monthly ``PeriodIndex``; with ``by_school`` or ``by_cluster``, per
    school or cluster and month: levels ``school_id`` or ``cluster``, and ``month``), counted by the
    database: the counts :func:`analytics.stats.run_charts.monthly_incident_series` takes from the loaded
    incident rows, without sending every incident to pandas (a district has hundreds of thousands). A
    cluster's counts are those of its schools' own read: one grouped read serves every cluster."""
    df = _read(engine, monthly_incidents_statement(actions, school_ids, by_school=by_school, by_cluster=by_cluster),
               MONTH_COUNTS_PLANNER)
    months = pd.PeriodIndex.from_fields(year=pd.to_numeric(df["year"]).astype("int64").to_numpy(),
                                        month=pd.to_numeric(df["month"]).astype("int64").to_numpy(), freq="M")
    counts = pd.to_numeric(df["incidents"]).astype("int64").to_numpy()
    if by_school or by_cluster:
        key = "school_id" if by_school else "cluster"
        index = pd.MultiIndex.from_arrays([df[key].astype(object).to_numpy(), months], names=[key, "month"])
        return pd.Series(counts, index=index, name="count")
    return pd.Series(counts, index=months, name="count")
