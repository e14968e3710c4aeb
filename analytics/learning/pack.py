"""The professional-learning evaluation as a data-meeting pack sheet and slide (``PACK_VIEWS["learning"]``).

The table is the `learning` view (DESIGN §7), level 5 on each programme's main goal metric; the chart is
level 5's estimates with their intervals; the finding says per programme how many levels have evidence
and what level 5 shows. A public pack passes the table through ``privacy.suppress_learning``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from analytics.outputs import charts_learning
from analytics.outputs.pack_views import Context, Figure, PackView, numeric, register_pack_view
from analytics.outputs.views import build_view

TITLE = "Professional learning: five-level evaluation"


def _table(engine: Engine, filters: dict, public: bool, _goal_progress=None) -> pd.DataFrame:
    return build_view(engine, "learning", public=public, program=filters.get("program"), all_goals=False)


def _names(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    """Programmes and metrics by their names (the export keeps the ids)."""
    from analytics.data import loads

    programs = loads.load_table(ctx.engine, "pl_programs")
    program_names = dict(zip(programs["program"], programs["program_name"].fillna(programs["program"]), strict=True))
    out = table.assign(program=table["program"].astype(str).map(lambda p: program_names.get(p, p)),
                       measure=table["measure"].astype(str))
    for metric, label in sorted(ctx.metric_names.items(), key=lambda kv: -len(kv[0])):
        out["measure"] = out["measure"].str.replace(metric, label, regex=False)
    return out


def _level5(table: pd.DataFrame) -> pd.DataFrame:
    t = numeric(table.assign(program=table["program"].astype(str), measure=table["measure"].astype(str)))
    return t[t["level"] == 5].dropna(subset=["estimate"])


def learning_figure(ctx: Context, table: pd.DataFrame) -> Figure | None:
    rows = _level5(_names(ctx, table))
    if rows.empty:
        return None
    chart = charts_learning.level5_intervals(rows, title="Professional learning: student outcomes (level 5)")
    data = pd.DataFrame({"Programme and outcome": rows["program"] + ": " + rows["measure"],
                         "Estimate (points)": rows["estimate"], "95% CI low": rows["ci_low"],
                         "95% CI high": rows["ci_high"], "Schools": rows["n"]})
    return Figure(chart, data, "bar", ["Estimate (points)"], "Programme and outcome", "Difference-in-differences")


def learning_finding(ctx: Context, table: pd.DataFrame) -> str:
    """Per programme: levels with evidence, and level 5's main estimate with its interval."""
    if table.empty:
        return "No professional-learning programmes."
    parts = []
    table = _names(ctx, table)
    main = _level5(table)
    for program, rows in table.groupby(table["program"].astype(str), sort=False):
        text = f"{program}: evidence at {pd.to_numeric(rows['level']).nunique()} of Guskey's 5 levels"
        first = main[main["program"] == program].head(1)
        if len(first):
            est, lo, hi = (float(first[c].iloc[0]) for c in ("estimate", "ci_low", "ci_high"))
            claim = "the interval excludes zero" if np.isfinite(lo) and (lo > 0 or hi < 0) else \
                "the interval includes zero: no effect can be claimed"
            outcome = first["measure"].iloc[0].split(": ", 1)[-1]
            text += f"; student outcomes ({outcome}): {est:+.2f} points (95% CI {lo:+.2f} to {hi:+.2f}), {claim}"
        parts.append(text)
    return "; ".join(parts) + "."


class LearningPackView(PackView):
    def people(self, name: str, ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
        """Names instead of ids, rounded numbers, headers that fit every level (not all are percentages)."""
        out = _names(ctx, table)
        for col in ("estimate", "ci_low", "ci_high"):
            out[col] = out[col].map(lambda v: round(v, 2) if isinstance(v, float) else v)
        return out.rename(columns={"program": "Programme", "level": "Level", "measure": "Measure",
                                   "estimate": "Estimate", "ci_low": "95% CI low", "ci_high": "95% CI high",
                                   "n": "n", "method": "Method"})


register_pack_view("learning", LearningPackView(TITLE, learning_figure, learning_finding, table=_table,
                                                sheet="PL evaluation"))
