"""Wide page tables keep every column on the page: short headers (their meaning in each one's help) and the
widest text last, so the last column is not hidden off the right edge (discipline, gaps, cluster)."""

from __future__ import annotations

import json

from analytics.data import loads
from tests.page_runner import run_page

SHARE = "token-checked-by-the-app-shell"


def _config(element) -> dict:
    return json.loads(element.proto.columns)


def _labels(element) -> list[str]:
    """The headers in the order shown (a column without a label of its own shows its name)."""
    config, order = _config(element), list(element.proto.column_order) or list(element.value.columns)
    return [config.get(f"col:{c}", config.get(c, {})).get("label") or c for c in order]


def test_discipline_rates_by_group_have_short_headers_most_used_first_and_full_names_in_help(on_demo):
    for params in ({}, {"share": SHARE}):
        at = run_page("discipline", year="2025", **params)
        rates = at.dataframe[0]
        labels = _labels(rates)
        assert labels[0] == "Any suspension (%)" and labels[-1] == "Enrolled (n)", labels
        assert max(len(label) for label in labels) <= 18  # was "Suspension (in or out of school) (%)"
        helps = " ".join(str(c.get("help")) for c in _config(rates).values())
        assert "Suspension (in or out of school)" in helps and "Referral to law enforcement" in helps


def test_gap_table_headers_fit_and_the_interval_columns_say_what_they_are(on_demo):
    at = run_page("gaps")
    table = next(d for d in at.dataframe if "mh_gap" in d.value.columns)
    config = _config(table)
    labels = [c.get("label") for c in config.values() if c.get("label")]
    assert "Students (n)" in labels and "Students in group (n)" not in labels
    assert sum(len(label) for label in labels) <= 110
    assert "95% interval of the within-school gap" in json.dumps(config)


def test_cluster_details_put_the_wide_flags_last_at_a_set_width(on_demo):
    cluster = loads.load_schools(on_demo)["cluster"].iloc[0]
    at = run_page("cluster", cluster=cluster, year="2025", metric="read_proficient", group="ALL")
    table = next(d for d in at.dataframe if "flags" in d.value.columns)
    order = list(table.proto.column_order)
    assert order[:3] == ["school_name", "value", "level"] and order[-1] == "flags", order
    assert _config(table)["flags"]["width"] == "medium"
    flags = " ".join(table.value["flags"].astype(str))
    assert "significantly" not in flags  # the short flags; the caption explains the test behind them
