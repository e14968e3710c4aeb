"""All-or-nothing import of district files (DESIGN §2 "Import rules", §7 `import`).

Every check is derived from `analytics.data.schema.TABLES` and runs column-wise over the whole file
(vectorised pandas operations), collecting every problem with its spreadsheet line number. If any
file of an import has a problem nothing is written; otherwise all tables are upserted on their
natural keys in one transaction, each file is recorded in the import history, and the data version
is bumped so cached views refresh at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.access import audit
from analytics.config import max_upload_bytes
from analytics.data import bulk_write, loads, schema, storage
from analytics.data.catalog import BUILTIN_METRICS, metric_catalog
from analytics.data.derived import COUNT_COLUMNS
from analytics.data.readers import CsvLines, RawTable, UnreadableFile, read_tables
from analytics.outputs.labels import counted, for_count
from analytics.workspace import import_rules as workspace_rules

# Public files mark suppressed cells with `*`, `n<10`, `<5`, `<= 5.0`, `≤5%`, `>95%`, `N/A`, `--`, `†` and the like.
SUPPRESSION_MARK = re.compile(
    r"^(\*+|[\u2020\u2021~]|n\s*[<\u2264]=?\s*\d+|[<>\u2264\u2265]=?\s*\d+(\.\d+)?\s*%?|n/?a|nr|ps|ds|-{1,2}|\u2014|\.)$",
    re.IGNORECASE)
# The first character of every cell SUPPRESSION_MARK matches (IGNORECASE folds n, p and d to N, P and D only).
_MARK_STARTS = frozenset("*\u2020\u2021~nNpPdD<>\u2264\u2265-\u2014.")
# Rows a spreadsheet adds for people: "Total", "District total", "All schools", "Grand total".
_TOTALS_ROW = re.compile(r"^((grand|district|sub)[\s-]*)?totals?:?$|^all\s+schools$", re.IGNORECASE)
# The first character of every cell _TOTALS_ROW matches (IGNORECASE also folds the long s, U+017F, to s).
_TOTALS_STARTS = frozenset("gGdDsStTaA\u017f")
# Student-level tables hold pseudonymous keys only (DESIGN §2); a column like these is refused, not ignored.
STUDENT_LEVEL_TABLES = ("incidents", "pl_assessments")
_PERSONAL_COLUMN = re.compile(r"(^|_)(first|last|middle|full|given|family|sur)?_?name$|^name$|birth|dob$|ssn|"
                              r"social_security|address|phone|e_?mail")
_CRDC_RESERVE_CODES = {-3, -5, -6, -8, -9, -11}  # CRDC: -9 not applicable, -3/-5 suppressed, ...
_YEAR = re.compile(r"^(\d{4})(?:\.0+)?(?:\s*[-/\u2013]\s*(\d{2}|\d{4}))?$")
_YES = {"Y", "YES", "TRUE", "1", "T"}
_NO = {"N", "NO", "FALSE", "0", "F"}
WRITE_ORDER = ("schools", "metric_definitions", "metrics", "discipline", "incidents", "improvement_cycles",
               "pl_programs", "pl_sessions", "pl_feedback", "pl_assessments", "pl_support", "implementation",
               "school_goals", "pdsa_cycles", "cycle_measures", "root_causes", "walkthroughs", "meetings")
_COUNT_LIMITED = ("students_suspended", "students_iss", "students_oss", "students_expelled", "law_referrals")


@dataclass(frozen=True)
class Problem:
    """One problem in one cell: `file:row:column: value: reason` (row = spreadsheet line, header = 1)."""

    file: str
    row: int | str
    column: str
    value: str
    reason: str

    def format(self) -> str:
        return f"{self.file}:{self.row}:{self.column}: {self.value}: {self.reason}"


@dataclass
class TableResult:
    source: str
    table: str
    frame: pd.DataFrame
    skipped: int = 0
    skip_reason: str = ""
    lines: CsvLines | None = None  # the file's own lines of `frame`, when they need no normalising


@dataclass
class ImportReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    results: list[TableResult] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["file", "row", "column", "value", "reason"])

    def summary_lines(self) -> list[str]:
        lines = []
        for r in self.results:
            line = f"{r.source}: {counted(len(r.frame), f'{r.table} row')} {'imported' if self.written else 'valid'}"
            if r.skipped:
                line += f"; {counted(r.skipped, 'row')} skipped ({r.skip_reason})"
            lines.append(line)
        return lines + [f"warning: {w}" for w in self.warnings]


@dataclass
class _Context:
    """What other tables say: known school, metric and PL programme ids (database plus this import)."""

    school_ids: set[str]
    metric_ids: set[str]
    program_ids: set[str] = field(default_factory=set)
    # Workspace references (database plus this import) and each metric's improving direction.
    goal_ids: set[str] = field(default_factory=set)
    cycle_ids: set[str] = field(default_factory=set)
    directions: dict[str, bool] = field(default_factory=dict)


# --- column checks ---------------------------------------------------------------------------------


def _problems(raw: RawTable, column: str, text: pd.Series, mask: pd.Series, reason: str | pd.Series) -> list[Problem]:
    if not mask.any():
        return []
    rows = np.flatnonzero(mask.to_numpy())
    reasons = reason[mask].tolist() if isinstance(reason, pd.Series) else [reason] * len(rows)
    values = [str(v).strip() for v in text.iloc[rows].tolist()]
    # Index labels are line offsets below the header (blank lines a reader dropped still count).
    labels = mask.index[rows]
    return [
        Problem(raw.source, int(i) + raw.first_data_line, column, repr(v) if v == "" else v, why)
        for i, v, why in zip(labels, values, reasons, strict=True)
    ]


def _suppressed(text: pd.Series) -> pd.Series:
    """`SUPPRESSION_MARK` over stripped cells."""
    return _matching(text, SUPPRESSION_MARK, _MARK_STARTS)


def _matching(text: pd.Series, pattern: re.Pattern, starts: frozenset[str]) -> pd.Series:
    """Whether each cell matches ``pattern``, whose every match begins with one of ``starts``. The Python regex
    runs cell by cell, so it runs only on cells whose first character is one of them (a vectorised test):
    numbers, codes and names never reach it (a state's 10,000 school ids: 0.025 s of CPU for the regex)."""
    maybe = text.str[:1].isin(starts).to_numpy(dtype=bool)
    marked = np.zeros(len(text), dtype=bool)
    if maybe.any():
        marked[maybe] = text[maybe].str.match(pattern).to_numpy(dtype=bool)
    return pd.Series(marked, index=text.index)


def _numbers(text: pd.Series) -> pd.Series:
    cleaned = text.str.replace(",", "", regex=False).str.rstrip("%").str.strip()
    return pd.to_numeric(cleaned, errors="coerce")


def _parse_years(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Ending school year from `2024`, `2023-24` or `2023-2024`; (years, bad mask)."""
    parts = text.str.extract(_YEAR)
    first = pd.to_numeric(parts[0], errors="coerce")
    second = parts[1]
    has_second = second.notna()
    expected_end = first + 1
    short_ok = second.str.len().eq(2) & (second == (expected_end % 100).map(lambda v: f"{int(v):02d}" if pd.notna(v) else ""))
    long_ok = second.str.len().eq(4) & (pd.to_numeric(second, errors="coerce") == expected_end)
    years = pd.Series(np.where(has_second, expected_end, first), index=text.index, dtype="float64")
    bad = first.isna() | (has_second & ~(short_ok | long_ok)) | ~years.between(1990, 2100)
    return years, bad


def _check_column(raw: RawTable, spec: schema.ColumnSpec, ctx: _Context,
                  keyed: bool = False) -> tuple[pd.Series, list[Problem], pd.Series, np.ndarray | None, bool]:
    """Parse one column; returns (typed values, problems, rows to skip, value codes of a `keyed` column,
    whether a file with `csv_lines` may send this column as written: every cell as :func:`_as_written` says and
    no row skipped).

    The checks run once per distinct cell text and are mapped back to rows: district files repeat
    the same school ids, years, groups and metrics thousands of times. Value codes number each row's
    typed value (-1 when missing; `2024` and `2023-24` share one), so the duplicate-key check compares
    integers instead of hashing every key cell again. A text column whose every cell is its own value (any
    file: :func:`_as_written` is asked of text columns always) is kept as read rather than rebuilt.
    """
    index = raw.frame.index
    if spec.name in raw.frame:
        column = raw.frame[spec.name]
        codes, uniques = raw.factorized(spec.name, keep=False)  # the early write's columns are kept already
    else:
        column = pd.Series("", index=index)
        codes, uniques = pd.factorize(column, sort=False)
    values_u, reasons_u, skip_u = _check_distinct(pd.Series(uniques, dtype=str).str.strip(), spec, ctx)
    texts = pd.Series(uniques)
    as_written = (raw.csv_lines is not None or spec.kind in _WRITTEN_TEXTS) and _as_written(texts, values_u, spec.kind)
    if as_written and spec.kind in _WRITTEN_TEXTS and values_u.dtype == column.dtype and texts.ne("").all():
        values = column  # every cell is its own value: the texts are not copied (a state's ids, 0.03 s a column)
    else:  # `take` keeps each column's own type (Arrow text stays Arrow): no per-row Python objects.
        values = values_u.reset_index(drop=True).take(codes).set_axis(index)
    if spec.kind == schema.DATE:
        values = pd.to_datetime(values)
    elif spec.kind in (schema.INT, schema.FLOAT, schema.YEAR):
        values = values.astype("float64")
    skip = pd.Series(skip_u.to_numpy(dtype=bool)[codes], index=index)
    value_codes = pd.factorize(values_u)[0][codes] if keyed else None
    verbatim = raw.csv_lines is not None and not skip_u.any() and as_written
    if reasons_u.isna().all():  # the usual case: no cell of this column has a problem
        return values, [], skip, value_codes, verbatim
    reasons = pd.Series(reasons_u.to_numpy()[codes], index=index)
    problems = _problems(raw, spec.name, column, reasons.notna(), reasons)
    return values, problems, skip, value_codes, verbatim


# Cells PostgreSQL reads as the number the checks make of them: digits, a point, a sign (no spaces, thousands
# separators, percent signs or exponents; `[0-9]`, as `\d` takes other scripts' digits too), and no negative zero
# in a decimal column (a column of whole numbers is read as integers, `-0` as 0; PostgreSQL would keep the sign:
# :data:`_NEGATIVE_ZERO`, a pattern of its own, as Arrow's regular expressions have no lookahead and a pattern with
# one is matched cell by cell in Python: a state's year of values, 0.028 s against 0.009 s for the two).
_WRITTEN_NUMBERS = {schema.INT: r"-?[0-9]+", schema.YEAR: r"[0-9]{4}",
                    schema.FLOAT: r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"}
_NEGATIVE_ZERO = r"-[0.]*"
_WRITTEN_TEXTS = (schema.TEXT, schema.SCHOOL, schema.PROGRAM, schema.METRIC, schema.GROUP, schema.ENUM)


def _as_written(texts: pd.Series, values: pd.Series, kind: str) -> bool:
    """Whether each distinct cell text, as written, is what is stored for it (:class:`readers.CsvLines`): an
    empty cell (NULL either way), a number as :data:`_WRITTEN_NUMBERS` writes it, a text equal to its stored
    value (not padded, in its stored case, not a suppression mark). Dates and yes/no cells are always rewritten."""
    filled = texts.ne("").to_numpy(dtype=bool)
    if kind in _WRITTEN_NUMBERS:
        cells = texts[filled]
        written = cells.str.fullmatch(_WRITTEN_NUMBERS[kind])
        if kind == schema.FLOAT:
            written &= ~cells.str.fullmatch(_NEGATIVE_ZERO)
        return bool(written.all())
    if kind in _WRITTEN_TEXTS:
        stored = values.astype(object).where(values.notna(), None).to_numpy()[filled]
        return bool((texts.to_numpy(dtype=object)[filled] == stored).all())
    return False


def _check_distinct(text: pd.Series, spec: schema.ColumnSpec, ctx: _Context) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Typed value, problem reason (None when fine) and skip flag for each distinct cell text."""
    empty = text.eq("")
    marked = _suppressed(text) & ~empty
    present = ~(empty | marked)
    reasons = pd.Series(None, index=text.index, dtype=object)
    skip = pd.Series(False, index=text.index)

    def flag(mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        if not mask.any():  # the usual case: nothing to set
            return
        new = mask & reasons.isna()
        reasons[new] = reason[new] if isinstance(reason, pd.Series) else reason

    if spec.required:
        flag(empty, "required value is missing")
        if spec.skip_when_suppressed:
            skip = marked.copy()
        else:
            flag(marked, "suppressed value in a required column")
    kind = spec.kind
    if kind in (schema.INT, schema.FLOAT):
        values = _numbers(text).where(present)
        # The rules compare plain arrays (NaN compares false): a pandas operation on a Series costs tens of
        # microseconds whatever its length, and a file's distinct numbers are few.
        number = values.to_numpy(dtype="float64")
        known = ~np.isnan(number)
        flag(present.to_numpy(dtype=bool) & ~known, "not a number")
        if kind == schema.INT:
            flag(known & (np.mod(number, 1, where=known, out=np.zeros_like(number)) != 0), "not a whole number")
        if spec.minimum is not None and spec.exclusive_minimum:
            flag(known & (number <= spec.minimum), f"must be > {spec.minimum:g}")
        elif spec.minimum is not None:
            if spec.minimum == 0:
                flag(np.isin(number, list(_CRDC_RESERVE_CODES)),
                     f"must be >= {spec.minimum:g} (a CRDC reserve code: -9 means not applicable, -3/-5 "
                     "suppressed; leave such cells empty)")
            flag(known & (number < spec.minimum), f"must be >= {spec.minimum:g}")
        if spec.maximum is not None:
            flag(known & (number > spec.maximum), f"must be <= {spec.maximum:g}")
        limit = {"latitude": 90, "longitude": 180}.get(spec.name)
        if limit:
            flag(known & (np.abs(number, where=known, out=np.zeros_like(number)) > limit),
                 f"{spec.name} must be between -{limit} and {limit}")
        return values.where(reasons.isna()), reasons, skip
    if kind == schema.YEAR:
        years, bad = _parse_years(text)
        flag(present & bad, "not a school year (use the ending year, e.g. 2024, or 2023-24)")
        return years.where(present & ~bad), reasons, skip
    if kind == schema.DATE:
        dates = pd.to_datetime(text.where(present), format="%Y-%m-%d", errors="coerce")
        midnight = pd.to_datetime(text.where(present & dates.isna()), format="%Y-%m-%d %H:%M:%S", errors="coerce")
        dates = dates.fillna(midnight.where(midnight.dt.normalize() == midnight))  # Excel's "2024-03-01 00:00:00"
        serial = pd.to_numeric(text.where(present & dates.isna()), errors="coerce")
        is_serial = serial.between(20000, 80000) & (serial % 1 == 0)
        flag(is_serial, serial.map(_excel_serial_reason))
        flag(present & dates.isna(), "not an ISO date (YYYY-MM-DD)")
        return pd.Series(dates.astype(object).where(dates.notna(), None), index=text.index), reasons, skip
    if kind == schema.YESNO:
        upper = text.str.upper()
        values = pd.Series(np.where(upper.isin(_YES), True, np.where(upper.isin(_NO), False, None)),
                           index=text.index, dtype=object)
        flag(present & values.isna(), "must be Y or N")
        return values.where(present, None), reasons, skip
    if kind in (schema.ENUM, schema.GROUP):
        canonical = {a.upper(): a for a in spec.allowed}
        values = text.str.upper().map(canonical)
        label = "student group" if kind == schema.GROUP else "value"
        flag(present & values.isna(), text.map(lambda v: f"unknown {label} {v!r}; allowed: {', '.join(spec.allowed)}"))
        return values.where(present), reasons, skip
    if kind == schema.METRIC:
        flag(present & ~_known(text, ctx.metric_ids), "unknown metric (not built in and not in metric_definitions)")
    if spec.name == "school_id":
        flag(present & _matching(text, _TOTALS_ROW, _TOTALS_STARTS), "a totals row, not a school: remove total and subtotal rows")
    if kind == schema.SCHOOL:
        flag(present & ~_known(text, ctx.school_ids), "unknown school_id (not in the schools table)")
    elif kind == schema.PROGRAM:
        flag(present & ~_known(text, ctx.program_ids), "unknown program (not in the pl_programs table)")
    return text.where(present), reasons, skip


def _known(text: pd.Series, ids: set[str]) -> pd.Series:
    """Whether each distinct cell text is one of ``ids``, looked up in the Python set: ``Series.isin`` on Arrow
    text builds an Arrow array of the whole set on every call (2,000 school ids against 2,000 distinct cells:
    7 ms, against 0.15 ms here)."""
    return pd.Series(np.fromiter(map(ids.__contains__, text.tolist()), dtype=bool, count=len(text)), index=text.index)


def _excel_serial_reason(serial: float) -> str | None:
    if pd.isna(serial):
        return None
    day = (pd.Timestamp("1899-12-30") + pd.Timedelta(days=int(serial))).date().isoformat()
    return f"an Excel serial date number (probably {day}); format the column as dates (YYYY-MM-DD) and save again"


# --- table rules ---------------------------------------------------------------------------------


def _explain(mask: pd.Series, values: pd.Series, template: str) -> pd.Series:
    """Reasons filled in only where a rule failed (formatting every row would cost more than the check)."""
    reasons = pd.Series(None, index=mask.index, dtype=object)
    reasons[mask] = [template.format(v) for v in values[mask]]
    return reasons


def _table_rules(raw: RawTable, table: str, clean: pd.DataFrame, ctx: _Context) -> list[Problem]:
    """Rules that involve two columns of a row (DESIGN §2)."""
    problems: list[Problem] = []
    text = raw.frame
    if table == "metrics":
        num, den = clean["numerator"], clean["denominator"]
        above = num > den
        problems += _problems(raw, "numerator", text.get("numerator", pd.Series("", index=text.index)),
                              above, _explain(above, den, "numerator above denominator ({:g})"))
        one_count = num.notna() ^ den.notna()
        needs = clean["value"].isna() & (num.isna() | den.isna()) & ~one_count
        if needs.any() and "value" in text:  # a value cell holding a mark is not missing (its text, only then)
            needs &= text["value"].str.strip().eq("")
        problems += _problems(raw, "value", text.get("value", pd.Series("", index=text.index)), needs,
                              "needs a value or both numerator and denominator")
    if table == "discipline":
        enrolled = clean["enrolled"]
        for col in _COUNT_LIMITED:
            if col in text:
                over = (clean[col] > enrolled) & (enrolled > 0)
                problems += _problems(raw, col, text[col], over, _explain(over, enrolled, "above enrolled ({:g})"))
        flagged = {(p.row, p.column) for p in problems}  # one message per cell: "above enrolled" comes first
        problems += [p for p in _groups_above_all(raw, clean) if (p.row, p.column) not in flagged]
    if table in ("improvement_cycles", "pdsa_cycles") and "end_date" in clean:
        before = clean["end_date"] < clean["start_date"]
        problems += _problems(raw, "end_date", text["end_date"], before, "ends before start_date")
    if table == "implementation":
        observed, using = clean["classrooms_observed"], clean["classrooms_using"]
        over = using > observed
        problems += _problems(raw, "classrooms_using", text["classrooms_using"], over,
                              _explain(over, observed, "above classrooms_observed ({:g})"))
    if table == "pl_programs" and "goal_metrics" in clean:
        problems += _goal_metric_problems(raw, clean["goal_metrics"], ctx)
    if table in workspace_rules.TABLE_RULES:
        for column, mask, reasons in workspace_rules.TABLE_RULES[table](clean, ctx):
            problems += _problems(raw, column, text.get(column, pd.Series("", index=text.index)), mask, reasons)
    return problems


def _second_header(raw: RawTable, spec: schema.TableSpec) -> list[Problem]:
    """A units or sub-heading row under the header ("count", "%") is a second header row, said once."""
    first = raw.frame.iloc[0]
    numeric = [c.name for c in spec.columns if c.kind in (schema.INT, schema.FLOAT) and c.name in raw.frame]
    worded = [c for c in numeric if first[c].strip() and not SUPPRESSION_MARK.match(first[c].strip())
              and pd.isna(pd.to_numeric(first[c].strip().rstrip("%").replace(",", ""), errors="coerce"))]
    if len(worded) < 2 or first.get("school_id", "").strip():  # a units row has no school on it
        return []
    text = " | ".join(first[c].strip() for c in worded[:4])
    return [Problem(raw.source, raw.first_data_line, "-", text,
                    "a second header row (units or sub-headings); a table needs exactly one header row")]


def _groups_above_all(raw: RawTable, clean: pd.DataFrame) -> list[Problem]:
    """A student group cannot have more students (enrolled, or with any count) than its school's ALL row
    of the same year in the same file (DESIGN §3: a group larger than ALL is an import error).

    Each row finds its school-year's first ALL row by a sorted search over integer school-year codes
    (a missing id or year is a value of its own, as in a join), and every count is compared as arrays:
    a join of the group rows to the ALL rows took a third of a discipline file's validation.
    """
    if "student_group" not in clean:
        return []
    group = clean["student_group"]
    is_all = group.eq("ALL").fillna(False).to_numpy(dtype=bool)
    if not is_all.any():
        return []
    school = pd.factorize(clean["school_id"], use_na_sentinel=False)[0].astype(np.int64)
    year = pd.factorize(clean["school_year"], use_na_sentinel=False)[0].astype(np.int64)
    key = school * (int(year.max()) + 1) + year
    all_rows = np.flatnonzero(is_all)
    all_keys, first = np.unique(key[all_rows], return_index=True)
    slot = np.minimum(np.searchsorted(all_keys, key), len(all_keys) - 1)
    reference = all_rows[first][slot]  # each row's ALL row (meaningful where `paired`)
    paired = (all_keys[slot] == key) & group.notna().to_numpy(dtype=bool) & ~is_all
    lines = clean.index.to_numpy()[reference] + raw.first_data_line
    problems: list[Problem] = []
    for col in (c for c in COUNT_COLUMNS if c in clean and c in raw.frame):
        values = clean[col].to_numpy(dtype="float64")
        limits = values[reference]
        over = paired & (values > limits)
        if over.any():
            why = pd.Series(None, index=clean.index, dtype=object)
            why[over] = [f"above the ALL row's {col} ({a:g}, line {int(line)}) for this school and year"
                         for a, line in zip(limits[over], lines[over], strict=True)]
            problems += _problems(raw, col, raw.frame[col], pd.Series(over, index=clean.index), why)
    return problems


def _goal_metric_problems(raw: RawTable, goals: pd.Series, ctx: _Context) -> list[Problem]:
    """`goal_metrics` lists metric ids separated by `;`; each must be in the catalog."""
    unknown = goals.fillna("").map(
        lambda text: [m.strip() for m in str(text).split(";") if m.strip() and m.strip() not in ctx.metric_ids])
    bad = unknown.map(bool)
    reasons = unknown.map(lambda ms: f"unknown metric {', '.join(ms)} (not built in and not in metric_definitions)")
    return _problems(raw, "goal_metrics", raw.frame["goal_metrics"], bad, reasons.where(bad))


def _row_keys(codes: list[np.ndarray]) -> np.ndarray:
    """One integer per row for its whole key, from each key column's value codes (-1 = missing, a value of
    its own): equal keys, equal integers, different keys, different ones. Comparing one integer column
    instead of a frame of four saves building that frame and hashing its rows (a state's new year of metrics:
    ~0.3 s of its validation).

    The codes are digits of one mixed-radix integer per row, kept as they are (the duplicate check hashes them
    once: numbering them first cost a state's new year of metrics a second hash pass, 0.07 s of CPU); only when
    that integer could overflow does each step number the pairs seen so far again (one hash pass a key column
    instead of one in all: 0.12 s of CPU against 0.27 s)."""
    sizes = [int(column.max(initial=-1)) + 2 for column in codes]
    rows = np.zeros(len(codes[0]), dtype=np.int64)
    if math.prod(sizes) < 2**63:
        for column, size in zip(codes, sizes, strict=True):
            rows = rows * size + (column + 1)
        return rows
    for column, size in zip(codes, sizes, strict=True):
        rows = pd.factorize(rows * size + (column + 1))[0].astype(np.int64)
    return rows


def _duplicate_keys(raw: RawTable, table: str, clean: pd.DataFrame, codes: np.ndarray | None) -> list[Problem]:
    """Rows whose key repeats an earlier row's; ``codes`` numbers the key of each row of ``clean``
    (:func:`_row_keys`; None when a key column is missing and the values are compared instead)."""
    key = list(schema.TABLES[table].key)
    if codes is not None and _all_distinct(codes):
        return []
    dup = (pd.Series(codes, index=clean.index).duplicated(keep="first") if codes is not None
           else clean.duplicated(key, keep="first"))
    if not dup.any():
        return []
    first_line = clean.reset_index().groupby(key, dropna=False)["index"].transform("min") + raw.first_data_line
    key_text = raw.frame.loc[clean.index, key].astype(str).apply(lambda col: col.str.strip()).agg(" / ".join, axis=1)
    reasons = first_line.set_axis(clean.index).map(lambda line: f"duplicate of line {line} (same {', '.join(key)})")
    return _problems(raw, key[0], key_text, dup, reasons)


def _all_distinct(codes: np.ndarray) -> bool:
    """Whether no row key (:func:`_row_keys`, integers from 0) repeats, told by marking each in an array of
    flags when the keys are not spread much wider than the rows: the usual file, whose keys are all distinct,
    then needs no hash table of them (a state's new year of metrics: 0.01 s of CPU against 0.05 s). False
    when it cannot tell so cheaply."""
    if not len(codes):
        return True
    top = int(codes.max())
    if top >= 16 * len(codes) + (1 << 20):
        return False
    seen = np.zeros(top + 1, dtype=bool)
    seen[codes] = True
    return int(np.count_nonzero(seen)) == len(codes)


def _guess_table(raw: RawTable, table: str | None) -> str | None:
    if table:
        return table
    hint = raw.name_hint.strip().lower()
    if hint in schema.TABLES:
        return hint
    matches = [t for t in sorted(schema.TABLES, key=len, reverse=True) if hint.startswith(t) or t in hint]
    return matches[0] if matches else None


def validate_table(raw: RawTable, table: str, ctx: _Context) -> tuple[TableResult, list[Problem], list[str]]:
    spec = schema.TABLES[table]
    warnings: list[str] = []
    columns = set(raw.frame.columns)
    missing = [c.name for c in spec.columns if c.required and c.name not in columns]
    if missing:
        return TableResult(raw.source, table, pd.DataFrame()), [
            Problem(raw.source, 1, col, "(no such column)", f"required column missing for table {table}")
            for col in missing
        ], warnings
    unknown = sorted(columns - set(spec.column_names))
    personal = [c for c in unknown if table in STUDENT_LEVEL_TABLES and _PERSONAL_COLUMN.search(c)]
    if personal:
        return TableResult(raw.source, table, pd.DataFrame()), [
            Problem(raw.source, 1, col, col, "looks like a name or personal identifier: student-level files may "
                                             "carry pseudonymous keys only, so remove the column")
            for col in personal
        ], warnings
    if unknown:
        warnings.append(f"{raw.source}: ignored unknown {for_count(len(unknown), 'column')} {', '.join(unknown)} "
                        f"for table {table}")
    if raw.frame.empty:
        return TableResult(raw.source, table, pd.DataFrame()), [
            Problem(raw.source, 2, "-", "''", "no data rows below the header")], warnings
    parsed: dict[str, pd.Series] = {}
    value_codes: dict[str, np.ndarray | None] = {}
    problems: list[Problem] = []
    skip = pd.Series(False, index=raw.frame.index)
    as_written = raw.csv_lines is not None and not unknown
    for col in spec.columns:
        if col.name not in columns and not col.required:
            continue
        values, col_problems, col_skip, value_codes[col.name], verbatim = _check_column(raw, col, ctx,
                                                                                       col.name in spec.key)
        parsed[col.name] = values
        problems += col_problems
        skip |= col_skip
        as_written &= verbatim
    # One frame from the parsed columns, none copied (assigning them one by one copied each).
    clean = pd.DataFrame(parsed, index=raw.frame.index, copy=False)
    if table == "metrics" and {"numerator", "denominator"} <= set(clean.columns):
        computed = 100.0 * clean["numerator"] / clean["denominator"].where(clean["denominator"] > 0)
        # A value made from the counts is not in the file's lines.
        as_written &= "value" in clean and not (clean["value"].isna() & computed.notna()).any()
        clean["value"] = clean["value"].fillna(computed) if "value" in clean else computed
    for col in spec.columns:  # rules below read every optional column
        if col.name not in clean and col.kind in (schema.INT, schema.FLOAT):
            clean[col.name] = np.nan
    kept = clean[~skip] if skip.any() else clean  # no copy of every column when no row is skipped
    key_codes = _row_keys([value_codes[c] for c in spec.key]) if set(spec.key) <= set(value_codes) else None
    if key_codes is not None and skip.any():
        key_codes = key_codes[~skip.to_numpy()]
    problems = _second_header(raw, spec) + problems
    problems += _table_rules(raw, table, clean, ctx) + _duplicate_keys(raw, table, kept, key_codes)
    kept = kept[[c for c in spec.column_names if c in columns or c == "value" and table == "metrics"]]
    lines = raw.csv_lines if as_written and not problems else None
    result = TableResult(raw.source, table, _storage_types(kept, spec), int(skip.sum()),
                         "enrolled suppressed" if skip.any() else "", lines)
    return result, problems, warnings


def _storage_types(frame: pd.DataFrame, spec: schema.TableSpec) -> pd.DataFrame:
    out = frame.copy(deep=False)  # copy-on-write: replacing a column here leaves `frame` as it was
    for col in spec.columns:
        if col.name not in out:
            continue
        if col.kind in (schema.INT, schema.YEAR):
            out[col.name] = _whole_numbers(out[col.name])
        elif col.kind == schema.DATE:
            out[col.name] = out[col.name].dt.date
    return out


def _whole_numbers(values: pd.Series) -> pd.Series:
    """Checked whole numbers held as floats (NaN where empty) as nullable integers, built from the array and
    its NaN mask: `astype("Int64")` tests every value for a fraction the checks have already refused (about
    twice the time). Values beyond exact float integers (2**53) go through pandas' checked conversion."""
    floats = values.to_numpy(dtype="float64")
    missing = np.isnan(floats)
    if np.abs(floats[~missing]).max(initial=0) >= 2**53:
        return values.astype("Int64")
    ints = np.where(missing, 0, floats).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(ints, missing), index=values.index, name=values.name)


# --- orchestration ------------------------------------------------------------------------------


def _context(engine: Engine, tables: list[tuple[RawTable, str]]) -> _Context:
    schools = loads.key_values(engine, "schools", "school_id")
    definitions = loads.load_metric_definitions(engine)
    metrics = {m.metric for m in BUILTIN_METRICS} | set(definitions.get("metric", []))
    programs = loads.key_values(engine, "pl_programs", "program")
    for raw, table in tables:
        if table == "schools" and "school_id" in raw.frame:
            schools |= set(raw.frame["school_id"].astype(str).str.strip())
        if table == "metric_definitions" and "metric" in raw.frame:
            metrics |= set(raw.frame["metric"].astype(str).str.strip())
        if table == "pl_programs" and "program" in raw.frame:
            programs |= set(raw.frame["program"].astype(str).str.strip())
    # Goal and cycle ids are read only for the workspace tables whose rules refer to them (a state's goals and
    # cycles: 0.09 s of CPU that a metrics file never uses).
    workspace = any(table in workspace_rules.TABLE_RULES for _, table in tables)
    goals, cycles = workspace_rules.known_ids(engine, tables) if workspace else (set(), set())
    catalog = metric_catalog(definitions)
    directions = {m: bool(v) for m, v in catalog["higher_is_better"].items()}
    return _Context(schools - {""}, metrics - {""}, programs - {""}, goals, cycles, directions)


def validate_bytes(engine: Engine, files: Sequence[tuple[str, bytes]], table: str | None = None,
                   max_bytes: int | None = None) -> ImportReport:
    """Check files without writing anything; the report holds the parsed tables and every problem."""
    report, tables = _read_files(files, table, max_bytes)
    return report if tables is None else _checked(report, tables, _context(engine, tables))


def _read_files(files: Sequence[tuple[str, bytes]], table: str | None,
                max_bytes: int | None) -> tuple[ImportReport, list[tuple[RawTable, str]] | None]:
    """Each file read and matched to its table: the report of what could not be (None: an unknown table)."""
    limit = max_bytes or max_upload_bytes()
    report = ImportReport()
    if table and table not in schema.TABLES:
        report.problems.append(Problem("-", "-", "--table", table,
                                       f"unknown table; use one of {', '.join(schema.TABLES)}"))
        return report, None
    tables: list[tuple[RawTable, str]] = []
    for name, data in files:
        if len(data) > limit:
            report.problems.append(Problem(name, "-", "-", f"{len(data):,} bytes",
                                           f"file is larger than the import limit of {limit / 1048576:g} MB"))
            continue
        try:
            raws = read_tables(name, data, limit)
        except UnreadableFile as exc:
            report.problems.append(Problem(exc.source or name, exc.row, exc.column, exc.value, str(exc)))
            continue
        report.warnings += [note for raw in raws for note in raw.notes]
        chosen = _choose_tables(raws, table, report)
        tables += chosen
    return report, tables


def _checked(report: ImportReport, tables: list[tuple[RawTable, str]], ctx: _Context) -> ImportReport:
    """Every check of every table read, into the report (``ctx``: what the database says, :func:`_context`)."""
    for raw, name in tables:
        result, problems, warnings = validate_table(raw, name, ctx)
        report.results.append(result)
        report.problems += problems
        report.warnings += warnings
    report.problems.sort(key=lambda p: (p.file, p.row if isinstance(p.row, int) else 0))
    return report


def _choose_tables(raws: list[RawTable], table: str | None, report: ImportReport) -> list[tuple[RawTable, str]]:
    if table and len(raws) > 1:
        named = [r for r in raws if r.name_hint == table]
        raws = named or raws[:1]
    chosen, unnamed = [], []
    for raw in raws:
        name = _guess_table(raw, table)
        (chosen.append((raw, name)) if name else unnamed.append(raw))
    if unnamed and chosen:
        report.warnings += [f"{r.source}: sheet skipped (its name is not a table name)" for r in unnamed]
    elif unnamed:
        for raw in unnamed:
            report.problems.append(Problem(raw.source, "-", "-", raw.name_hint,
                                           "cannot tell which table this is: name the file or sheet after one of "
                                           f"{', '.join(schema.TABLES)}, or choose the table"))
    return chosen


def write_report(engine: Engine, report: ImportReport, who: str,
                 early: bulk_write.EarlyYearWrite | None = None) -> None:
    """Write a valid report's tables in one transaction (upsert), record history, bump the data versions.

    An import of workspace tables alone (goals, cycles, walkthroughs, meetings...: :data:`schema.WORKSPACE_TABLES`)
    bumps only the version every write bumps, as the same records saved in a form do: nothing cached under the
    import version reads them, so the district's figures stay warm. Any other table is imported data and bumps
    both: results cached under the import version read schools, metrics, discipline, incidents, the catalogue,
    the improvement cycles of the run charts and the programmes a meeting pack offers.

    ``early``: the report's file already written while it was checked (:func:`import_bytes`), finished in its
    transaction when the checks found it stored as written (:func:`_written_early`), else abandoned."""
    if not report.ok:
        raise ValueError("refusing to write an import that has problems")
    ordered = sorted(report.results, key=lambda r: WRITE_ORDER.index(r.table))

    def write(conn, written: TableResult | None = None) -> None:
        for result in ordered:
            if result is not written:
                bulk_write.upsert(conn, result.table, result.frame, result.lines)
            workspace_rules.record_history(conn, result.table, result.frame, who)
            bulk_write.record_import(conn, result.source, result.table, len(result.frame), result.skipped, who)
            audit.record(conn, who, audit.IMPORT, result.table,
                         f"{result.source}: {counted(len(result.frame), 'row')}, {result.skipped:,} skipped")
        storage.bump_version(conn, imported=any(r.table not in schema.WORKSPACE_TABLES for r in ordered))

    if early is not None and _written_early(early, ordered) and early.finish(lambda conn: write(conn, ordered[0])):
        report.written = True
        return
    if early is not None:
        early.abandon()
    with storage.write_transaction(engine) as conn:
        write(conn)
    report.written = True


def _written_early(early: bulk_write.EarlyYearWrite, results: list[TableResult]) -> bool:
    """Whether the early write holds the report's one table as the write after the checks would store it: the
    file's own lines, every row (none skipped), every cell as written (so its one year is the text read)."""
    return (len(results) == 1 and results[0].table == early.table_name and results[0].lines is early.lines
            and len(results[0].frame) == early.rows)


# Rows of a file checked before its early write starts: the write only pays when the whole file is stored as written.
EARLY_SAMPLE_ROWS = 1_000


def _early_write(engine: Engine, tables: list[tuple[RawTable, str]] | None,
                 ctx: _Context) -> bulk_write.EarlyYearWrite | None:
    """A new school year's file written while it is checked (:class:`bulk_write.EarlyYearWrite`), when the import is
    one plain CSV file (:class:`readers.CsvLines`) of one year's rows of a table partitioned by year on
    PostgreSQL, large enough to be copied straight in (:data:`bulk_write.DIRECT_COPY_MIN_ROWS`), whose first
    :data:`EARLY_SAMPLE_ROWS` rows pass every check and are stored as written. A file whose groups are in
    another case, say, would otherwise be copied and indexed for nothing (a state's year: 2 s of the server's
    CPU); checking the sample costs 0.04 s."""
    if engine.dialect.name != "postgresql" or not tables or len(tables) != 1:
        return None
    raw, table = tables[0]
    order = {"school_year", *schema.key_order(table, "postgresql")} if table in schema.YEAR_PARTITIONED else None
    if (order is None or raw.csv_lines is None or len(raw.frame) < bulk_write.DIRECT_COPY_MIN_ROWS
            or not order <= set(raw.frame.columns)):
        return None
    years = raw.factorized("school_year")[1]
    if len(years) != 1 or not re.fullmatch(_WRITTEN_NUMBERS[schema.YEAR], str(years[0])):
        return None
    head = RawTable(raw.source, raw.name_hint, raw.frame.iloc[:EARLY_SAMPLE_ROWS], raw.first_data_line,
                    csv_lines=raw.csv_lines)
    if validate_table(head, table, ctx)[0].lines is None:
        return None
    for name in bulk_write.partition_order(table):  # here, before the write's thread orders the rows by them
        raw.factorized(name)
    return bulk_write.EarlyYearWrite(engine, table, int(years[0]), raw.frame, raw.csv_lines, raw.factorized)


def import_bytes(engine: Engine, files: Sequence[tuple[str, bytes]], table: str | None = None,
                 who: str = "unknown", max_bytes: int | None = None) -> ImportReport:
    """Validate and, when every file is clean, write them all in one transaction.

    A new school year's file is written meanwhile, in that transaction, and committed only once every cell is
    checked (:func:`_early_write`)."""
    report, tables = _read_files(files, table, max_bytes)
    if tables is None:
        return report
    ctx = _context(engine, tables)  # read first: the checks then need no connection while the early write holds one
    early = _early_write(engine, tables, ctx)
    try:
        _checked(report, tables, ctx)
        if report.ok and report.results:
            write_report(engine, report, who, early)
    finally:
        if early is not None:
            early.abandon()
    return report


def import_files(engine: Engine, paths: Iterable[Path], table: str | None = None, who: str = "unknown",
                 max_bytes: int | None = None) -> ImportReport:
    """`python -m analytics import`: read files from disk and import them all or nothing."""
    limit = max_bytes or max_upload_bytes()
    files: list[tuple[str, bytes]] = []
    report = ImportReport()
    for path in paths:
        path = Path(path)
        if not path.is_file():
            report.problems.append(Problem(str(path), "-", "-", "-", "no such file"))
        elif path.stat().st_size > limit:
            report.problems.append(Problem(path.name, "-", "-", f"{path.stat().st_size:,} bytes",
                                           f"file is larger than the import limit of {limit / 1048576:g} MB"))
        else:
            files.append((path.name, path.read_bytes()))
    if not report.ok:
        return report
    return import_bytes(engine, files, table=table, who=who, max_bytes=limit)
