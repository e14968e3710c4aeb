"""Reading a programme's evaluation from the database: the pieces pages, exports and packs share."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import storage
from analytics.data.catalog import metric_catalog
from analytics.learning import fidelity, outcomes
from analytics.learning.evaluation import EXPORT_COLUMNS, PL_TABLES, Evaluation, evaluate, program_data


class NotFound(LookupError):
    """An unknown programme or school."""


def pl_tables(engine: Engine, shareable_only: bool = False) -> dict[str, pd.DataFrame]:
    """The PL tables; ``implementation`` holds the imported observations and the walkthrough look-fors tagged
    with a programme practice (``fidelity.combine``; with ``shareable_only``, shareable visits only)."""
    from analytics.workspace import records

    tables = {name: storage.load_table(engine, name) for name in ("pl_programs", *PL_TABLES)}
    visits = records.load(engine, "walkthroughs")
    tables["implementation"] = fidelity.combine(tables["implementation"],
                                                fidelity.walkthrough_observations(visits, shareable_only))
    return tables


def goal_panel(engine: Engine, metric: str) -> pd.DataFrame:
    """School x year values of one metric for all students (suspension rate derived from discipline)."""
    metrics = storage.load_metrics(engine, metrics=[metric], groups=["ALL"])
    discipline = storage.load_discipline(engine, groups=["ALL"]) if metric == "suspension_rate" else pd.DataFrame()
    return outcomes.metric_panel(metrics, discipline, metric)


def evaluate_program(engine: Engine, tables: dict[str, pd.DataFrame], program: str, school: str | None = None,
                     metric: str | None = None, settings: Settings = DEFAULT_SETTINGS) -> Evaluation:
    """The five levels for `program` (optionally one participating school) with level 5 on `metric`
    (default: the programme's main goal metric)."""
    programs = tables["pl_programs"].set_index("program", drop=False)
    if program not in programs.index:
        raise NotFound(f"programme {program!r} not found")
    data = program_data(programs.loc[program], tables, school)
    metric = metric or (data.goal_metrics[0] if data.goal_metrics else "suspension_rate")
    catalog = metric_catalog(storage.load_metric_definitions(engine))
    label = str(catalog.loc[metric, "label"]) if metric in catalog.index else metric
    higher = bool(catalog.loc[metric, "higher_is_better"]) if metric in catalog.index else True
    all_sessions = tables["pl_sessions"][tables["pl_sessions"]["program"] == program]
    starts = outcomes.participation_starts(all_sessions)
    panel = outcomes.like_for_like(goal_panel(engine, metric), starts, storage.load_schools(engine))
    panel, starts = outcomes.scope_to_school(panel, starts, school)
    return evaluate(data, panel, starts, metric, label, higher, settings)


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
