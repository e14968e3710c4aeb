"""Fixed inputs for the district, cluster, school and discipline chart builders, and the Vega-Lite spec each
gives.

`tests/snapshots/chart_specs.json` holds these specs as the builders first made them; the test
`tests/test_labels_and_charts.py::test_chart_specs_match_snapshot` checks that a cheaper construction
still gives the same spec. Refresh deliberately with `python tests/chart_spec_cases.py`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.outputs import charts_district, charts_equity  # noqa: E402

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "chart_specs.json"


def _schools(n: int, counts: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    df = pd.DataFrame({"school_id": [f"S{i:03d}" for i in range(n)], "school_name": [f"School {i}" for i in range(n)],
                       "level": rng.choice(["Elementary", "Middle", "High"], n),
                       "value": rng.uniform(20, 80, n).round(1)})
    df["school_label"] = df["school_name"] + " (" + df["level"] + ")"
    df["ci_low"] = (df["value"] - 5) if counts else np.nan
    df["ci_high"] = (df["value"] + 5) if counts else np.nan
    df["denominator"] = 120.0 if counts else np.nan
    return df


def _trends(series: list[str], years: int = 4) -> pd.DataFrame:
    rows = [{"school_year": 2022 + y, "value": 40.0 + 3 * i + y, "series": s, "school": s}
            for i, s in enumerate(series) for y in range(years)]
    return pd.DataFrame(rows)


def _ratios(n: int) -> pd.DataFrame:
    """Risk-ratio rows as the discipline page draws them: one school's groups, or schools of one group."""
    return pd.DataFrame({"school_id": [f"S{i:03d}" for i in range(n)], "student_group": "BL",
                         "label": [f"School {i}" for i in range(n)], "risk_ratio": np.linspace(5.5, 0.5, n).round(3),
                         "ratio_type": ["alternate" if i % 4 == 1 else "within_school" for i in range(n)]})


def _events() -> pd.DataFrame:
    """An event study's rows: pre-periods, the reference year, an unbounded interval."""
    return pd.DataFrame({"outcome": "suspension_rate", "rel_year": [-3, -2, -1, 0, 1, 2],
                         "estimate": [0.2, -0.1, 0.0, -0.8, -1.2, -1.5],
                         "ci_low": [-0.5, -0.9, 0.0, -1.6, -2.3, -np.inf],
                         "ci_high": [0.9, 0.7, 0.0, 0.1, -0.1, np.inf], "n_schools": [4, 6, 8, 8, 5, 1]})


def _months(signal: bool = True) -> pd.DataFrame:
    """A monthly run chart's rows (stats.run_charts.run_chart) with or without signal points."""
    values = [3, 4, 5, 6, 7, 8, 2, 3, 4, 4]
    signals = ["", "trend", "trend", "trend", "trend", "trend", "", "", "", ""] if signal else [""] * 10
    return pd.DataFrame({"period": pd.date_range("2024-08-01", periods=10, freq="MS"), "value": values,
                         "median": 4.0, "signal": signals})


def _cycles() -> pd.DataFrame:
    return pd.DataFrame({"start": pd.to_datetime(["2024-09-01", "2024-09-15", "2025-02-01"]),
                         "end": pd.to_datetime(["2024-12-01", "2024-12-15", "2025-03-01"]),
                         "change_idea": ["Restorative circles", "Check-in check-out with a long change idea", "Mediation"],
                         "status": ["done", "done", "running"]})


def cases() -> dict[str, object]:
    """Each case's chart, built by the builders as the pages call them."""
    return {
        "dots_with_intervals": charts_district.school_dot_plot(_schools(12), "Math proficient", 52.5),
        "dots_many_best_and_worst": charts_district.school_dot_plot(
            _schools(45), "Math proficient", 50.0, subtitle="The 15 best and 15 worst of 80 schools."),
        "dots_values_only": charts_district.school_dot_plot(_schools(8, counts=False), "Graduation", float("nan")),
        "trend_by_group": charts_district.trend_lines(_trends(["All students", "Black", "Hispanic"]),
                                                      "Reading proficient", title="Reading proficient by group"),
        "trend_by_school": charts_district.trend_lines(_trends(["School 1", "School 2", "School 3"]),
                                                       "Reading proficient", color_field="school",
                                                       facet_field="school", columns=2,
                                                       title="Reading proficient: trend by school"),
        "ratios_by_school": charts_equity.risk_ratio_bars(_ratios(9), title="Black suspension risk ratio by school",
                                                          label_field="label"),
        "ratios_by_group": charts_equity.risk_ratio_bars(
            _ratios(3).assign(label=["Black", "Hispanic", "White"], student_group=["BL", "HI", "WH"]),
            title="Suspension risk ratios, School 1", label_field="label"),
        "ratios_by_group_code": charts_equity.risk_ratio_bars(_ratios(2).assign(student_group=["BL", "SWD"])),
        "event_study": charts_equity.event_study(_events(), title="Suspension rate: effect by years since RP start, "
                                                                  "North"),
        "run_chart": charts_equity.run_chart(_months(), title="Suspensions (ISS + OSS) per month, North",
                                             y_title="Suspensions per month"),
        "run_chart_no_signal_with_cycles": charts_equity.run_chart(_months(signal=False), _cycles(),
                                                                   title="Suspensions per month, Lincoln ES",
                                                                   y_title="Suspensions per month"),
        "run_chart_no_cycles_in_range": charts_equity.run_chart(_months(), _cycles().iloc[0:0]),
    }


def normalised(spec: dict) -> dict:
    """The spec with its view names replaced by their order of appearance (`view_1`, ...): Altair names a
    view with a selection by a hash of its data's text, a builder may name it itself."""
    text = json.dumps(spec, sort_keys=True)
    names: dict[str, str] = {}
    for name in re.findall(r'"name": "([^"]+)"', text):
        if name.startswith("view_") or name.endswith("_dots") and name not in names:
            names[name] = f"view_{len(names) + 1}"
    for old, new in names.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


def specs() -> dict[str, dict]:
    return {name: normalised(chart.to_dict()) for name, chart in cases().items()}


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(specs(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
