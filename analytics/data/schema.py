"""The one definition of every table: import columns, validation rules, SQL schema, data dictionary.

`TABLES` describes each importable table column by column (DESIGN §2). The SQLAlchemy Core
tables are generated from it, the importer validates against it and the data dictionary page
renders it, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from analytics.data.catalog import SCHOOL_LEVELS, STUDENT_GROUPS

# Column kinds the validator understands.
TEXT, INT, FLOAT, YEAR, DATE, YESNO, ENUM, GROUP, METRIC, SCHOOL, BOOL, PROGRAM = (
    "text", "int", "float", "year", "date", "Y/N", "enum", "group", "metric", "school", "bool", "program",
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    required: bool = False
    description: str = ""
    minimum: float | None = None
    allowed: tuple[str, ...] = ()
    exclusive_minimum: bool = False  # e.g. enrolled > 0
    maximum: float | None = None  # e.g. a 1-5 Likert response
    # A suppressed cell in this required column skips the row instead of failing it.
    skip_when_suppressed: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    # Records edited in the app: a `version` for optimistic concurrency and who/when of the last change.
    managed: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


ACTIONS = ("ISS", "OSS", "EXP", "LAW_REFERRAL", "RESTORATIVE", "OTHER")
CYCLE_STATUSES = ("planned", "running", "adopt", "adapt", "abandon")
# `pl_support.in_place`: Y/N, or a 1-5 Likert rating (4 or 5 counts as in place).
SUPPORT_VALUES = ("Y", "N", "1", "2", "3", "4", "5")
GOAL_STATUSES = ("draft", "active", "met", "not_met", "retired")
PDSA_DECISIONS = ("adopt", "adapt", "abandon")
CAUSE_CATEGORIES = ("people", "process", "policy", "materials", "environment", "measurement")
GROUP_CODES = tuple(STUDENT_GROUPS)

_count = "count of students (integer >= 0); `*` or `n<10` marks mean suppressed"

TABLES: dict[str, TableSpec] = {
    "schools": TableSpec(
        "schools",
        "One row per school.",
        (
            ColumnSpec("school_id", TEXT, True, "District school code, unique."),
            ColumnSpec("school_name", TEXT, True, "Name as it appears in reports."),
            ColumnSpec("level", ENUM, True, "School level.", allowed=tuple(SCHOOL_LEVELS)),
            ColumnSpec("cluster", TEXT, True, "Cluster (feeder pattern or portfolio) name."),
            ColumnSpec("region", TEXT, False, "Region or quadrant."),
            ColumnSpec("latitude", FLOAT, False, "WGS84 latitude, -90 to 90."),
            ColumnSpec("longitude", FLOAT, False, "WGS84 longitude, -180 to 180."),
            ColumnSpec("enrollment", INT, False, "Total enrollment.", minimum=0),
            ColumnSpec(
                "rp_start_year", YEAR, False,
                "First school year (ending year) of restorative practices; empty = comparison school.",
            ),
            ColumnSpec("title1", YESNO, False, "Title I school (Y/N)."),
        ),
        key=("school_id",),
    ),
    "metric_definitions": TableSpec(
        "metric_definitions",
        "Optional: adds to or overrides the built-in metric catalog.",
        (
            ColumnSpec("metric", TEXT, True, "Metric id used in the metrics table."),
            ColumnSpec("label", TEXT, True, "Display name."),
            ColumnSpec("unit", TEXT, False, "Unit, usually `%`."),
            ColumnSpec("higher_is_better", YESNO, False, "Y when a higher value is better."),
            ColumnSpec("category", TEXT, False, "Grouping such as Achievement or Attendance."),
        ),
        key=("metric",),
    ),
    "metrics": TableSpec(
        "metrics",
        "SSIF-style long format: one row per school x year x metric x student group. Either `value` "
        "or both counts; when counts are given and `value` is empty, value = 100 x numerator / denominator.",
        (
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("school_year", YEAR, True, "Ending year (2024 = 2023-24); `2023-24` accepted."),
            ColumnSpec("metric", METRIC, True, "Metric id from the catalog."),
            ColumnSpec("student_group", GROUP, True, "Student-group code.", allowed=GROUP_CODES),
            ColumnSpec("numerator", INT, False, "Students meeting the measure; " + _count, minimum=0),
            ColumnSpec("denominator", INT, False, "Students measured; " + _count, minimum=0),
            ColumnSpec("value", FLOAT, False, "Percentage 0-100 (computed from counts when empty)."),
            ColumnSpec("target", FLOAT, False, "School Performance Plan target, same unit as value."),
        ),
        key=("school_id", "school_year", "metric", "student_group"),
    ),
    "discipline": TableSpec(
        "discipline",
        "Aggregated discipline counts (CRDC-shaped): one row per school x year x student group. A group row "
        "may not exceed its school's `ALL` row of the same year in the same file (enrolled or any count).",
        (
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("school_year", YEAR, True, "Ending year (2024 = 2023-24); `2023-24` accepted."),
            ColumnSpec("student_group", GROUP, True, "Student-group code.", allowed=GROUP_CODES),
            ColumnSpec(
                "enrolled", INT, True, "Students enrolled (> 0). A suppressed value skips the row.",
                minimum=0, exclusive_minimum=True, skip_when_suppressed=True,
            ),
            ColumnSpec(
                "students_suspended", INT, False,
                "Unduplicated students with at least one ISS or OSS; " + _count, minimum=0,
            ),
            ColumnSpec("students_iss", INT, False, "Students with in-school suspension; " + _count, minimum=0),
            ColumnSpec("students_oss", INT, False, "Students with out-of-school suspension; " + _count, minimum=0),
            ColumnSpec("students_expelled", INT, False, "Students expelled; " + _count, minimum=0),
            ColumnSpec("oss_days", FLOAT, False, "Days of out-of-school suspension (>= 0).", minimum=0),
            ColumnSpec("incidents", INT, False, "Discipline incidents.", minimum=0),
            ColumnSpec("law_referrals", INT, False, "Students referred to law enforcement; " + _count, minimum=0),
            ColumnSpec("restorative_conferences", INT, False, "Restorative conferences held.", minimum=0),
        ),
        key=("school_id", "school_year", "student_group"),
    ),
    "incidents": TableSpec(
        "incidents",
        "Optional student-level events with pseudonymous keys only (never names).",
        (
            ColumnSpec("incident_id", TEXT, True, "Unique incident id."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("incident_date", DATE, True, "ISO date (YYYY-MM-DD)."),
            ColumnSpec("student_key", TEXT, True, "Pseudonymous student key (never a name or real id)."),
            ColumnSpec("race", GROUP, False, "Race/ethnicity code.", allowed=("AM", "AS", "BL", "HI", "PI", "WH", "MU")),
            ColumnSpec("farms", YESNO, False, "Free and reduced-price meals (Y/N)."),
            ColumnSpec("eml", YESNO, False, "Emergent multilingual learner (Y/N)."),
            ColumnSpec("swd", YESNO, False, "Student with disabilities (Y/N)."),
            ColumnSpec("gender", ENUM, False, "FEMALE or MALE.", allowed=("FEMALE", "MALE")),
            ColumnSpec("offense_category", TEXT, False, "Offense category."),
            ColumnSpec("action", ENUM, True, "Action taken.", allowed=ACTIONS),
            ColumnSpec("days_removed", FLOAT, False, "Days removed from class (>= 0).", minimum=0),
        ),
        key=("incident_id",),
    ),
    "improvement_cycles": TableSpec(
        "improvement_cycles",
        "Optional PDSA cycles, shown on run charts.",
        (
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("metric", TEXT, True, "Metric the cycle targets (e.g. suspension_rate)."),
            ColumnSpec("start_date", DATE, True, "ISO date."),
            ColumnSpec("end_date", DATE, False, "ISO date, on or after start_date."),
            ColumnSpec("change_idea", TEXT, True, "The change being tested."),
            ColumnSpec("status", ENUM, False, "Cycle status.", allowed=CYCLE_STATUSES),
        ),
        key=("school_id", "metric", "start_date", "change_idea"),
    ),
    "pl_programs": TableSpec(
        "pl_programs",
        "Professional-learning (PL) programmes evaluated on Guskey's five levels (DESIGN §10).",
        (
            ColumnSpec("program", TEXT, True, "Programme id, e.g. RP or MATH-TALK."),
            ColumnSpec("program_name", TEXT, False, "Display name."),
            ColumnSpec("description", TEXT, False, "What the programme teaches."),
            ColumnSpec(
                "goal_metrics", TEXT, False,
                "Metric ids the programme aims to move, separated by `;` (the first is the main goal).",
            ),
            ColumnSpec("start_year", YEAR, False, "First school year (ending year) of the programme."),
        ),
        key=("program",),
    ),
    "pl_sessions": TableSpec(
        "pl_sessions",
        "PL sessions: one row per session (school empty for district-wide sessions).",
        (
            ColumnSpec("program", PROGRAM, True, "A programme from pl_programs."),
            ColumnSpec("session_id", TEXT, True, "Session id, unique within the programme."),
            ColumnSpec("session_date", DATE, True, "ISO date."),
            ColumnSpec("school_id", SCHOOL, False, "School whose staff took part; empty = district-wide."),
            ColumnSpec("participants", INT, True, "Staff who attended.", minimum=0),
            ColumnSpec("hours", FLOAT, False, "Length of the session in hours.", minimum=0),
        ),
        key=("program", "session_id"),
    ),
    "pl_feedback": TableSpec(
        "pl_feedback",
        "Level 1 (reactions): counts of each Likert response (1 = strongly disagree ... 5 = strongly agree) "
        "per session and item.",
        (
            ColumnSpec("program", PROGRAM, True, "A programme from pl_programs."),
            ColumnSpec("session_id", TEXT, True, "Session id from pl_sessions."),
            ColumnSpec("item", TEXT, True, "Survey statement, e.g. 'The session was a good use of my time'."),
            ColumnSpec("response", INT, True, "Likert response 1-5.", minimum=1, maximum=5),
            ColumnSpec("count", INT, True, "Participants who gave this response.", minimum=0),
        ),
        key=("program", "session_id", "item", "response"),
    ),
    "pl_assessments": TableSpec(
        "pl_assessments",
        "Level 2 (learning): one row per participant with pre and post scores. Pseudonymous keys only; "
        "this table never leaves editing staff.",
        (
            ColumnSpec("program", PROGRAM, True, "A programme from pl_programs."),
            ColumnSpec("participant_key", TEXT, True, "Pseudonymous participant key (never a name)."),
            ColumnSpec("school_id", SCHOOL, False, "The participant's school."),
            ColumnSpec("pre_score", FLOAT, False, "Score before the programme."),
            ColumnSpec("post_score", FLOAT, False, "Score after the programme (pairs need both)."),
        ),
        key=("program", "participant_key"),
    ),
    "pl_support": TableSpec(
        "pl_support",
        "Level 3 (organisation support): whether each support was in place at a school in a year.",
        (
            ColumnSpec("program", PROGRAM, True, "A programme from pl_programs."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("school_year", YEAR, True, "Ending year (2024 = 2023-24)."),
            ColumnSpec("item", TEXT, True, "Support, e.g. 'Protected coaching time'."),
            ColumnSpec("in_place", ENUM, True, "Y/N, or a 1-5 rating (4 or 5 = in place).",
                       allowed=SUPPORT_VALUES),
        ),
        key=("program", "school_id", "school_year", "item"),
    ),
    "implementation": TableSpec(
        "implementation",
        "Level 4 (use): classroom observations of a practice (walkthroughs, coaching visits).",
        (
            ColumnSpec("program", PROGRAM, True, "A programme from pl_programs."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("observed_on", DATE, True, "ISO date of the observation."),
            ColumnSpec("practice", TEXT, True, "Practice looked for, e.g. 'Restorative circles'."),
            ColumnSpec("classrooms_observed", INT, True, "Classrooms visited (> 0).", minimum=0,
                       exclusive_minimum=True),
            ColumnSpec("classrooms_using", INT, True, "Classrooms where the practice was seen.", minimum=0),
        ),
        key=("program", "school_id", "observed_on", "practice"),
    ),
    # --- the improvement workspace (DESIGN §9) ---
    "school_goals": TableSpec(
        "school_goals",
        "School Performance Plan goals: one measurable goal per row, aligned to a district metric.",
        (
            ColumnSpec("goal_id", TEXT, True, "Goal id, unique (e.g. G-101-READ)."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("metric", METRIC, True, "Metric id from the catalog the goal is measured by."),
            ColumnSpec("student_group", GROUP, True, "Student-group code the goal is for.", allowed=GROUP_CODES),
            ColumnSpec("baseline_year", YEAR, True, "School year of the baseline (ending year)."),
            ColumnSpec("baseline_value", FLOAT, True, "Baseline value, same unit as the metric."),
            ColumnSpec("target_year", YEAR, True, "School year the target is due, after the baseline year."),
            ColumnSpec("target_value", FLOAT, True, "Target value, in the metric's improving direction."),
            ColumnSpec("status", ENUM, True, "Goal status.", allowed=GOAL_STATUSES),
            ColumnSpec("interim_targets", TEXT, False, "Optional interim targets per year: `2025: 48; 2026: 52`."),
            ColumnSpec("strategy", TEXT, False, "The strategy the school uses to reach the goal."),
            ColumnSpec("owner", TEXT, False, "Who owns the goal (a role or team, not a student)."),
            ColumnSpec("priority", TEXT, False, "District priority the goal serves."),
        ),
        key=("goal_id",),
        managed=True,
    ),
    "pdsa_cycles": TableSpec(
        "pdsa_cycles",
        "Plan-Do-Study-Act cycles: the full record, linked into ramps through previous_cycle_id.",
        (
            ColumnSpec("cycle_id", TEXT, True, "Cycle id, unique."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("change_idea", TEXT, True, "The change being tested."),
            ColumnSpec("start_date", DATE, True, "ISO date."),
            ColumnSpec("end_date", DATE, False, "ISO date, on or after start_date."),
            ColumnSpec("goal_id", TEXT, False, "The goal the cycle serves (optional)."),
            ColumnSpec("previous_cycle_id", TEXT, False, "The cycle this one builds on (a ramp)."),
            ColumnSpec("question", TEXT, False, "Plan: the question the cycle answers."),
            ColumnSpec("prediction", TEXT, False, "Plan: what we predict will happen."),
            ColumnSpec("plan_who", TEXT, False, "Plan: who carries it out (roles, no student names)."),
            ColumnSpec("plan_what", TEXT, False, "Plan: what is done."),
            ColumnSpec("plan_where", TEXT, False, "Plan: where."),
            ColumnSpec("plan_when", TEXT, False, "Plan: when."),
            ColumnSpec("measure", TEXT, False, "A catalog metric id or the name of a custom measure."),
            ColumnSpec("do_notes", TEXT, False, "Do: what happened."),
            ColumnSpec("study_result", TEXT, False, "Study: the result against the prediction."),
            ColumnSpec("decision", ENUM, False, "Act: the decision.", allowed=PDSA_DECISIONS),
            ColumnSpec("learning", TEXT, False, "Act: what was learned."),
        ),
        key=("cycle_id",),
        managed=True,
    ),
    "cycle_measures": TableSpec(
        "cycle_measures",
        "Custom measures of PDSA cycles (e.g. weekly counts), drawn as run charts with the cycle spans.",
        (
            ColumnSpec("cycle_id", TEXT, True, "A cycle_id from pdsa_cycles."),
            ColumnSpec("date", DATE, True, "ISO date of the measurement."),
            ColumnSpec("value", FLOAT, True, "The measured value."),
            ColumnSpec("note", TEXT, False, "Optional note (no student names)."),
        ),
        key=("cycle_id", "date"),
    ),
    "root_causes": TableSpec(
        "root_causes",
        "Root causes per goal, by category, with an optional 5-whys chain.",
        (
            ColumnSpec("cause_id", TEXT, True, "Cause id, unique."),
            ColumnSpec("goal_id", TEXT, True, "A goal_id from school_goals."),
            ColumnSpec("category", ENUM, True, "Category of the cause.", allowed=CAUSE_CATEGORIES),
            ColumnSpec("statement", TEXT, True, "The cause statement."),
            ColumnSpec("whys", TEXT, False, "Optional 5-whys chain, one why per line (or separated by ` > `)."),
        ),
        key=("cause_id",),
        managed=True,
    ),
    "walkthroughs": TableSpec(
        "walkthroughs",
        "Non-evaluative walkthrough notes: no teacher or student names.",
        (
            ColumnSpec("visit_id", TEXT, True, "Visit id, unique."),
            ColumnSpec("school_id", SCHOOL, True, "A school_id from the schools table."),
            ColumnSpec("visit_date", DATE, True, "ISO date of the visit."),
            ColumnSpec("visitor", TEXT, False, "Who visited (role or name of the visitor)."),
            ColumnSpec("focus", TEXT, False, "Focus: a goal id or a practice."),
            ColumnSpec("look_fors", TEXT, False, "Look-fors as `item: k/n` (observed in k of n classrooms), `;`-separated."),
            ColumnSpec("practices", TEXT, False,
                       "Optional: the professional-learning practice a look-for observes, as `look-for = PROGRAM: "
                       "practice` (`;`-separated, e.g. `Circle held = RP: Restorative circles`); tagged look-fors "
                       "count towards level 4 (use) of the programme on /learning."),
            ColumnSpec("notes", TEXT, False, "Non-evaluative notes."),
            ColumnSpec("next_steps", TEXT, False, "Agreed next steps."),
            ColumnSpec("shareable", YESNO, False, "Y when the visit may appear on shared links."),
        ),
        key=("visit_id",),
        managed=True,
    ),
    "meetings": TableSpec(
        "meetings",
        "Data-meeting dates per scope (`district` or a cluster name): what changed is counted from them.",
        (
            ColumnSpec("scope", TEXT, True, "`district` or a cluster name."),
            ColumnSpec("meeting_date", DATE, True, "ISO date of the meeting."),
            ColumnSpec("note", TEXT, False, "Optional note."),
        ),
        key=("scope", "meeting_date"),
    ),
}
WORKSPACE_TABLES = ("school_goals", "pdsa_cycles", "cycle_measures", "root_causes", "walkthroughs", "meetings")

IMPORTABLE_TABLES = tuple(TABLES)

_SQL_TYPES = {
    TEXT: lambda: Text(),
    SCHOOL: lambda: String(64),
    PROGRAM: lambda: String(64),
    METRIC: lambda: String(64),
    GROUP: lambda: String(16),
    ENUM: lambda: String(32),
    INT: lambda: Integer(),
    YEAR: lambda: Integer(),
    FLOAT: lambda: Float(),
    DATE: lambda: Date(),
    YESNO: lambda: Boolean(),
    BOOL: lambda: Boolean(),
}
# Key columns must be bounded strings so every database can index them.
_KEY_TEXT = {"school_id": 64, "incident_id": 64, "metric": 64, "change_idea": 400, "program": 64,
             "session_id": 64, "participant_key": 64, "item": 200, "practice": 200, "goal_id": 64,
             "cycle_id": 64, "cause_id": 64, "visit_id": 64, "scope": 200}

metadata = MetaData()

# PostgreSQL: tables partitioned by school year, one LIST partition a year named by `year_partition` (migration
# 0008). A new year's file becomes a table of its own, indexed once and attached (`bulk_write.upsert`), instead of
# growing the table's B-trees row by row; queries filtered on the year read that year's partition alone. The
# unique key holds the partition key, so `ON CONFLICT` works on the parent. SQLite ignores the option.
YEAR_PARTITIONED = ("metrics", "discipline")
_YEAR_PARTITION = re.compile(rf"({'|'.join(YEAR_PARTITIONED)})_y(\d+)")

# PostgreSQL: the text key columns of the tables partitioned by year compare as bytes (`COLLATE "C"`, migration
# 0010), as SQLite's and Python's do. A new year's partition sorts its rows for its unique key and indexes, and a
# sort in a language's collation (glibc `strcoll`, without PostgreSQL's abbreviated keys) is several times slower.
BYTE_ORDER = "C"


# PostgreSQL: the unique key of each table partitioned by year, in the order of its columns there (migration
# 0014): metric and group first, then the school (the year, one value in a partition, last). A new year's
# partition is filled in this order, so the key's build finds its rows sorted and PostgreSQL sorts only for the
# index on the school, whose entries compare by an abbreviated key alone: at 10,000 schools (a new year of 1.31 M
# metrics rows, one process) both B-trees took 1.0 s of the server's CPU where the school-first key (sorted) and
# a metric-first index (in order) took 1.8 s. Uniqueness, `ON CONFLICT` and every lookup are the same in any
# column order; SQLite keeps the declared order, its table one B-tree with indexes of its own.
POSTGRESQL_KEY_ORDER = {"metrics": ("metric", "student_group", "school_id", "school_year"),
                        "discipline": ("student_group", "school_id", "school_year")}

# PostgreSQL: the columns the unique key's B-tree carries beside its key (`INCLUDE`, migration 0015), so a read of
# a year's counts and values is an index-only scan in the key's order. What changed joins three years of a
# district's metrics side by side (1.3 M rows a year at 10,000 schools): merged in that order straight from the
# three keys, with no hash of any year, the worsened colours' statement took 1.4 s of the server's CPU instead
# of 2.4 (`aggregates_status.YEAR_JOIN_PLANNER`). The key's index grows from 66 to 89 MiB a year there.
POSTGRESQL_KEY_INCLUDE = {"metrics": ("numerator", "denominator", "value")}


def _sql_column(table: TableSpec, spec: ColumnSpec) -> Column:
    in_key = spec.name in table.key
    if spec.kind == TEXT and spec.name in _KEY_TEXT:
        sql_type = String(_KEY_TEXT[spec.name])
    else:
        sql_type = _SQL_TYPES[spec.kind]()
    if in_key and isinstance(sql_type, String) and table.name in YEAR_PARTITIONED:
        sql_type = sql_type.with_variant(String(sql_type.length, collation=BYTE_ORDER), "postgresql")
    return Column(spec.name, sql_type, nullable=not (spec.required or in_key))


def declared_indexes(table_name: str, dialect_name: str) -> list[Index]:
    """The secondary indexes a table has on a database of this dialect, by name (those of
    :data:`SQLITE_ONLY_INDEXES` on SQLite only, those of :data:`POSTGRESQL_ONLY_INDEXES` on PostgreSQL only)."""
    other = POSTGRESQL_ONLY_INDEXES if dialect_name == "sqlite" else SQLITE_ONLY_INDEXES
    return sorted((ix for ix in metadata.tables[table_name].indexes if ix.name not in other), key=lambda ix: ix.name)


def key_order(table_name: str, dialect_name: str) -> tuple[str, ...]:
    """The columns of a table's unique key in the order its B-tree sorts them on this dialect: the declared key,
    except on PostgreSQL for a :data:`YEAR_PARTITIONED` table (:data:`POSTGRESQL_KEY_ORDER`)."""
    if dialect_name == "postgresql" and table_name in POSTGRESQL_KEY_ORDER:
        return POSTGRESQL_KEY_ORDER[table_name]
    return TABLES[table_name].key


def key_include(table_name: str, dialect_name: str) -> tuple[str, ...]:
    """The columns a table's unique key carries beside its key on this dialect (:data:`POSTGRESQL_KEY_INCLUDE`)."""
    return POSTGRESQL_KEY_INCLUDE.get(table_name, ()) if dialect_name == "postgresql" else ()


def year_partition(table_name: str, year: int) -> str:
    """The name of one school year's partition of a :data:`YEAR_PARTITIONED` table (``metrics_y2024``)."""
    return f"{table_name}_y{int(year)}"


def is_year_partition(name: str) -> bool:
    """True for a partition's table name: not a table of the schema itself (migrations compare without them)."""
    return _YEAR_PARTITION.fullmatch(name) is not None


def _build_table(spec: TableSpec) -> Table:
    cols = [_sql_column(spec, c) for c in spec.columns]
    if spec.managed:
        cols += [
            Column("version", Integer, nullable=False, server_default="1"),
            Column("updated_at", DateTime(timezone=True)),
            Column("updated_by", Text),
        ]
    options = {"postgresql_partition_by": "LIST (school_year)"} if spec.name in YEAR_PARTITIONED else {}
    return Table(spec.name, metadata, *cols, UniqueConstraint(*spec.key, name=f"uq_{spec.name}_key"), **options)


schools = _build_table(TABLES["schools"])
metric_definitions = _build_table(TABLES["metric_definitions"])
metrics = _build_table(TABLES["metrics"])
discipline = _build_table(TABLES["discipline"])
incidents = _build_table(TABLES["incidents"])
improvement_cycles = _build_table(TABLES["improvement_cycles"])
pl_programs = _build_table(TABLES["pl_programs"])
pl_sessions = _build_table(TABLES["pl_sessions"])
pl_feedback = _build_table(TABLES["pl_feedback"])
pl_assessments = _build_table(TABLES["pl_assessments"])
pl_support = _build_table(TABLES["pl_support"])
implementation = _build_table(TABLES["implementation"])
school_goals = _build_table(TABLES["school_goals"])
pdsa_cycles = _build_table(TABLES["pdsa_cycles"])
cycle_measures = _build_table(TABLES["cycle_measures"])
root_causes = _build_table(TABLES["root_causes"])
walkthroughs = _build_table(TABLES["walkthroughs"])
meetings = _build_table(TABLES["meetings"])

# Query paths: filter by year and metric first (page views), by school for profiles. On PostgreSQL a year's
# rows are a partition of their own, read whole by a year-only filter and by the metric-first unique key with a
# metric, so a year index has no read to serve there and is not kept (migration 0009). On SQLite the year index
# leaves the group out (migration 0011): a new year's rows, written school by school, then reach it in runs of
# a metric's groups; a read of a year, a metric and a group is served by the metric-first index. On PostgreSQL
# the unique key leads with the metric and group (:data:`POSTGRESQL_KEY_ORDER`, migration 0014) and serves those
# reads itself; a school's rows are found by an index on the school alone.
SQLITE_ONLY_INDEXES = frozenset({"ix_metrics_year_metric", "ix_metrics_metric_group_year", "ix_discipline_year"})
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_metrics_school", "ix_discipline_school"})
Index("ix_metrics_year_metric", metrics.c.school_year, metrics.c.metric).ddl_if(dialect="sqlite")
# One metric and group across the years (district and cluster figures, trends, gap references).
Index("ix_metrics_metric_group_year", metrics.c.metric, metrics.c.student_group,
      metrics.c.school_year).ddl_if(dialect="sqlite")
Index("ix_discipline_year", discipline.c.school_year, discipline.c.student_group).ddl_if(dialect="sqlite")
Index("ix_metrics_school", metrics.c.school_id).ddl_if(dialect="postgresql")
Index("ix_discipline_school", discipline.c.school_id).ddl_if(dialect="postgresql")
Index("ix_incidents_school_date", incidents.c.school_id, incidents.c.incident_date)
Index("ix_schools_cluster", schools.c.cluster)
Index("ix_implementation_school", implementation.c.school_id, implementation.c.observed_on)
Index("ix_school_goals_school", school_goals.c.school_id)
Index("ix_pdsa_cycles_school", pdsa_cycles.c.school_id)
Index("ix_walkthroughs_school", walkthroughs.c.school_id, walkthroughs.c.visit_date)
Index("ix_root_causes_goal", root_causes.c.goal_id)

imports = Table(
    "imports",
    metadata,
    Column("import_id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", Text, nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("rows_skipped", Integer, nullable=False, default=0),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", Text, nullable=False),
)

data_version = Table(
    "data_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

shares = Table(
    "shares",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("view", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("note", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("times_opened", Integer, nullable=False, default=0),
)

# The privacy release decided for one state of the data (`analytics.access.release_store`): deciding it takes a
# minute of CPU at 200 schools, so every server process and restart reads it here instead of deciding again.
release_decisions = Table(
    "release_decisions",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("cells", LargeBinary, nullable=False),
)

# Results kept for one state of the data (`analytics.data.kept`): what a restarted server or another process
# reads instead of computing again (What changed's district list costs seconds at 10,000 schools).
kept_results = Table(
    "kept_results",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("args", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("code", String(64), nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
    Column("frame", LargeBinary, nullable=False),
)

# Who did what, when: sign-ins, imports, edits and shared links made, opened and revoked
# (`analytics.access.audit` owns the actions and writes every row).
audit_log = Table(
    "audit_log",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("who", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text),
    Column("detail", Text),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_action", audit_log.c.action)

# Who changed which workspace record when, with the record before and after (JSON).
workspace_history = Table(
    "workspace_history",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("record_id", String(200), nullable=False),
    Column("action", String(16), nullable=False),
    Column("version", Integer),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("before", Text),
    Column("after", Text),
    Index("ix_workspace_history_record", "table_name", "record_id"),
)

DATA_TABLES = {name: metadata.tables[name] for name in IMPORTABLE_TABLES}


def data_dictionary() -> pd.DataFrame:
    """Every importable column with its type, whether required, and its meaning."""
    rows = []
    for table in TABLES.values():
        for col in table.columns:
            allowed = ", ".join(col.allowed) if col.allowed else ""
            rows.append(
                {
                    "table": table.name,
                    "column": col.name,
                    "type": col.kind,
                    "required": "yes" if col.required else "",
                    "key": "yes" if col.name in table.key else "",
                    "allowed values": allowed,
                    "description": col.description,
                }
            )
    return pd.DataFrame(rows)
