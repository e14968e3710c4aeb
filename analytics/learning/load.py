"""Reading a programme's evaluation from the database: the pieces pages, exports and packs share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import loads, schema
from analytics.data.catalog import metric_catalog
from analytics.learning import fidelity, levels, outcomes
from analytics.learning.evaluation import EXPORT_COLUMNS, Evaluation, evaluate, program_data
from analytics.stats.did import DiDResult


class NotFound(LookupError):
    """An unknown programme or school."""


def load_programs(engine: Engine) -> pd.DataFrame:
    """The ``pl_programs`` table: every programme, its name, description and goal metrics."""
    return loads.load_table(engine, "pl_programs")


def feedback_summary_statements(programs: Sequence[str] | None = None) -> tuple[sa.Select, sa.Select]:
    """SELECT the feedback sums per programme, session school, item and response, and the sessions with
    feedback per programme and school (``levels.feedback_by_school`` in SQL: one statement on SQLite and
    PostgreSQL). The session's school comes from ``pl_sessions`` by its key (programme, session id)."""
    f, s = schema.pl_feedback, schema.pl_sessions
    source = f.outerjoin(s, sa.and_(s.c.program == f.c.program, s.c.session_id == f.c.session_id))
    keys = [f.c.program, s.c.school_id]
    counts = sa.select(*keys, f.c.item, f.c.response, sa.func.sum(f.c["count"]).label("count")).select_from(source)
    held = sa.select(*keys, sa.func.count(sa.distinct(f.c.session_id)).label("sessions")).select_from(source)
    if programs is not None:
        counts, held = (stmt.where(f.c.program.in_(list(programs))) for stmt in (counts, held))
    counts = counts.group_by(*keys, f.c.item, f.c.response).order_by(*keys, f.c.item, f.c.response)
    return counts, held.group_by(*keys).order_by(*keys)


# PostgreSQL's sort memory for the feedback sums: with the default 4 MB a programme's 213,000 feedback rows at
# 10,000 schools were sorted on disk, twice (0.68 s of the learning page's first figure; 0.46 s in memory).
FEEDBACK_SUMS_PLANNER = {"work_mem": "64MB"}


def feedback_summary(engine: Engine, programs: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Level 1's evidence from the database: the same two tables as ``levels.feedback_by_school`` over the
    imported rows (numbers as float, like ``loads.load_table``), a few rows per school instead of every
    response of every session."""
    counts_stmt, held_stmt = feedback_summary_statements(programs)
    counts = loads._read(engine, counts_stmt, FEEDBACK_SUMS_PLANNER)
    held = loads._read(engine, held_stmt, FEEDBACK_SUMS_PLANNER)
    counts = counts if len(counts) else pd.DataFrame(columns=levels.FEEDBACK_COLUMNS)
    held = held if len(held) else pd.DataFrame(columns=levels.FEEDBACK_SESSION_COLUMNS)
    counts = counts.astype({"response": "float64", "count": "float64"})
    return counts[levels.FEEDBACK_COLUMNS], held.astype({"sessions": "int64"})[levels.FEEDBACK_SESSION_COLUMNS]


def tagged_observations(engine: Engine, shareable_only: bool = False,
                        programs: Sequence[str] | None = None) -> pd.DataFrame:
    """The walkthrough look-fors tagged with a practice (of ``programs``, when given) as observations."""
    from analytics.workspace import records

    return fidelity.walkthrough_observations(records.load(engine, "walkthroughs", columns=fidelity.VISIT_COLUMNS),
                                             shareable_only, programs)


def pl_tables(engine: Engine, shareable_only: bool = False, programs: Sequence[str] | None = None,
              tagged: pd.DataFrame | None = None,
              read: Mapping[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """The PL tables (every programme in ``pl_programs``; the others only of ``programs`` when given).

    ``pl_feedback`` holds the sums per school, item and response and ``feedback_sessions`` the sessions
    behind them (:func:`feedback_summary`); ``implementation`` the imported observations and the walkthrough
    look-fors tagged with a programme practice (``fidelity.combine``; with ``shareable_only``, shareable
    visits only; ``tagged``, when given, stands for :func:`tagged_observations` of every programme, e.g. read
    once for several programmes). ``read`` holds tables of these names already read for the same
    ``programs`` (``pl_sessions``; ``pl_feedback`` with ``feedback_sessions``): used as they are, not read again."""
    read = read or {}
    tables = {name: read[name] if name in read else loads.load_table(engine, name, programs=programs)
              for name in ("pl_sessions", "pl_assessments", "pl_support", "implementation")}
    tables["pl_programs"] = load_programs(engine)
    if "pl_feedback" in read and "feedback_sessions" in read:
        tables["pl_feedback"], tables["feedback_sessions"] = read["pl_feedback"], read["feedback_sessions"]
    else:
        tables["pl_feedback"], tables["feedback_sessions"] = feedback_summary(engine, programs)
    if tagged is None:
        tagged = tagged_observations(engine, shareable_only, programs)
    elif programs is not None:
        tagged = tagged[tagged["program"].isin(list(programs))]
    tables["implementation"] = fidelity.combine(tables["implementation"], tagged)
    return tables


def goal_panel(engine: Engine, metric: str) -> pd.DataFrame:
    """School x year values of one metric for all students (suspension rate derived from discipline)."""
    metrics = loads.load_metrics(engine, metrics=[metric], groups=["ALL"])
    discipline = loads.load_discipline(engine, groups=["ALL"]) if metric == "suspension_rate" else pd.DataFrame()
    return outcomes.metric_panel(metrics, discipline, metric)


@dataclass(frozen=True)
class ProgramOutcome:
    """Level 5's metric, its outcome panel (like-for-like schools, scoped to a school when one is chosen) and the
    participating schools' start years (:func:`program_outcome`)."""

    metric: str
    label: str
    higher_is_better: bool
    panel: pd.DataFrame
    starts: pd.Series


def program_outcome(engine: Engine, sessions: pd.DataFrame, program: str, school: str | None,
                    metric: str) -> ProgramOutcome:
    """Level 5's inputs for `program` on `metric` from its sessions (``pl_sessions``) and the outcome panel: they
    need none of the other PL tables (the walkthroughs of level 4, the fidelity tertiles), so the overall estimate
    (:func:`overall_effect`) can be made from them while those are read."""
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    label = str(catalog.loc[metric, "label"]) if metric in catalog.index else metric
    higher = bool(catalog.loc[metric, "higher_is_better"]) if metric in catalog.index else True
    starts = outcomes.participation_starts(sessions[sessions["program"] == program])
    panel = outcomes.like_for_like(goal_panel(engine, metric), starts, loads.load_schools(engine))
    panel, starts = outcomes.scope_to_school(panel, starts, school)
    return ProgramOutcome(metric, label, higher, panel, starts)


def overall_effect(outcome: ProgramOutcome, settings: Settings = DEFAULT_SETTINGS) -> DiDResult | None:
    """Level 5's overall estimate (with its event study) on `outcome`, or None where level 5 makes none (no
    participating school, no outcome data)."""
    if outcome.starts.empty or outcome.panel.empty:
        return None
    return outcomes.did(outcome.panel, outcome.starts, outcome.metric, settings)


def evaluate_program(engine: Engine, tables: dict[str, pd.DataFrame], program: str, school: str | None = None,
                     metric: str | None = None, settings: Settings = DEFAULT_SETTINGS,
                     outcome: ProgramOutcome | None = None,
                     overall: Callable[[], DiDResult | None] | None = None) -> Evaluation:
    """The five levels for `program` (optionally one participating school) with level 5 on `metric`
    (default: the programme's main goal metric). ``outcome``: :func:`program_outcome` of the same programme,
    school and metric, already made (else made here); ``overall``: gives its :func:`overall_effect` (e.g. made on
    another thread meanwhile), asked for once the fidelity tertiles' estimates have started (else made here)."""
    programs = tables["pl_programs"].set_index("program", drop=False)
    if program not in programs.index:
        raise NotFound(f"programme {program!r} not found")
    data = program_data(programs.loc[program], tables, school)
    metric = metric or (data.goal_metrics[0] if data.goal_metrics else "suspension_rate")
    if outcome is None:
        outcome = program_outcome(engine, tables["pl_sessions"], program, school, metric)
    return evaluate(data, outcome.panel, outcome.starts, metric, outcome.label, outcome.higher_is_better, settings,
                    overall=overall)


def learning_table(engine: Engine, program: str | None = None, all_goals: bool = True,
                   settings: Settings = DEFAULT_SETTINGS, public: bool = False) -> pd.DataFrame:
    """`export learning`: every level of every programme (or one), level 5 for each goal metric (or, without
    ``all_goals``, the main one). ``public``: walkthroughs count towards level 4 only when shareable."""
    tables = pl_tables(engine, shareable_only=public)
    programs = tables["pl_programs"]["program"].tolist()
    if program is not None:
        if program not in programs:
            raise NotFound(f"programme {program!r} not found; known: {', '.join(programs) or 'none'}")
        programs = [program]
    parts = []
    for name in programs:
        first = evaluate_program(engine, tables, name, settings=settings)
        parts.append(first.export_table())
        for metric in first.data.goal_metrics[1:] if all_goals else []:
            extra = evaluate_program(engine, tables, name, metric=metric, settings=settings).export_table()
            parts.append(extra[extra["level"] == 5])
    if not parts:
        return pd.DataFrame(columns=EXPORT_COLUMNS)
    return pd.concat(parts, ignore_index=True)
