"""What changed since the last data meeting (DESIGN §9, `export changes`).

The meeting looked at the school years that had ended by its date: a school year (ending year Y)
ends on 30 June of Y, so a meeting on 2025-03-10 saw years up to 2024 and a meeting on 2025-09-15
years up to 2025 (`year_of_record`). Yearly signals compare the latest year on file now with that
year; dated series (cycle measures, monthly suspensions) compare the run chart now with the run
chart of the points up to the meeting date. A school is listed once per change:

- `new_rr_flag`: a group x outcome meets the 3-consecutive-year risk-ratio rule now and did not then;
- `status_worsened`: a metric x group colour is now Orange or Red and was better (a lower colour) then;
- `goal_off_track`: a goal is off track in a year after the meeting's year and was not before;
- `run_chart_signal`: a series has a shift or trend point dated after the meeting, and its run chart
  up to the meeting did not already end in a signal;
- `new_year`: the school has data for a school year after the meeting's year.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.data.catalog import group_label, school_labels
from analytics.outputs.labels import counted
from analytics.stats.run_charts import run_charts

CHANGE_KINDS = ("new_rr_flag", "status_worsened", "goal_off_track", "run_chart_signal", "new_year")
CHANGE_LABELS = {"new_rr_flag": "New risk-ratio flag", "status_worsened": "Status worsened",
                 "goal_off_track": "Goal now off track", "run_chart_signal": "New run-chart signal",
                 "new_year": "New year of data"}
# The kinds of change that are concerns, most serious first: a risk-ratio flag is a legal finding, a goal is the
# school's own plan, a colour is one cell of the grid; a run-chart signal may be a change for the better.
CONCERNS = ("new_rr_flag", "goal_off_track", "status_worsened", "run_chart_signal")
# What a school in the summary's count has ("15 with a new risk-ratio flag"): the list holds one row a school and kind.
CHANGE_HAS = {"new_rr_flag": "a new risk-ratio flag", "status_worsened": "a worsened status",
              "goal_off_track": "a goal now off track", "run_chart_signal": "a new run-chart signal",
              "new_year": "a new year of data"}
CHANGE_COLUMNS = ["school_id", "school_name", "change", "detail", "since", "link"]
# A list longer than this is not sent to the browser until asked for (about 250 bytes a row there): at 10,000
# schools the district's is 24,000 rows, 6 MB a visit, that nobody reads in full; its counts by cluster lead.
ROWS_AT_ONCE = 5_000
COLOR_RANK = {"Blue": 0, "Green": 1, "Yellow": 2, "Orange": 3, "Red": 4}
OUTCOME_LABELS = {"suspension": "suspension", "iss": "in-school suspension", "oss": "out-of-school suspension",
                  "expulsion": "expulsion", "law_referral": "law-enforcement referral"}


def year_of_record(since: date) -> int:
    """The last school year (ending year) that had ended by `since` (school years end on 30 June)."""
    return since.year if since.month >= 7 else since.year - 1


def new_rr_flags(dispro: pd.DataFrame, then_year: int, now_year: int) -> pd.DataFrame:
    """Groups x outcomes flagged in `now_year` and not in `then_year` (DESIGN §3 3-year rule)."""
    if now_year <= then_year or dispro.empty:
        return _empty()
    keys = ["school_id", "student_group", "outcome"]
    now = dispro[(dispro["school_year"] == now_year) & dispro["flagged"].astype(bool)]
    before = dispro[(dispro["school_year"] == then_year) & dispro["flagged"].astype(bool)][keys]
    fresh = now.merge(before.assign(_was=True), on=keys, how="left")
    fresh = fresh[fresh["_was"].isna()]
    return pd.DataFrame({
        "school_id": fresh["school_id"], "change": "new_rr_flag",
        "detail": [f"{group_label(g)}: {OUTCOME_LABELS.get(o, o)} risk ratio {r:.1f} in {now_year}, 3 years at "
                   f"3.0 or more" for g, o, r in zip(fresh["student_group"], fresh["outcome"], fresh["risk_ratio"],
                                                      strict=True)],
        "link": [f"discipline?school={s}&year={now_year}&group={g}" for s, g in
                 zip(fresh["school_id"], fresh["student_group"], strict=True)],
    })


def worsened_status(then: pd.DataFrame, now: pd.DataFrame, now_year: int, labels: dict[str, str]) -> pd.DataFrame:
    """Colours now Orange or Red that were better in the meeting's year (colours from status_change).

    A district has hundreds of thousands of such cells but a few hundred distinct details (metric, group and
    the two colours): each is written once and given to its cells, and the links are joined column-wise."""
    keys = ["school_id", "student_group", "metric"]
    if now.empty or then.empty:
        return _empty()
    both = now[keys + ["color"]].merge(then[keys + ["color"]], on=keys, suffixes=("", "_then"))
    return worsened_cells(both, now_year, labels)


def worsened_cells(both: pd.DataFrame, now_year: int, labels: dict[str, str]) -> pd.DataFrame:
    """:func:`worsened_status` of cells with both colours (``school_id, metric, student_group, color,
    color_then``, each key once), in their order: a district's cells coloured in the database come so, and
    joining their colours again on the keys was a quarter of this time (185,561 cells at 10,000 schools)."""
    if both.empty:
        return _empty()
    rank_now = both["color"].map(COLOR_RANK)
    rank_then = both["color_then"].map(COLOR_RANK)
    worse = both[both["color"].isin(["Orange", "Red"]) & rank_then.notna() & (rank_now > rank_then)]
    combo = ["metric", "student_group", "color_then", "color"]
    codes = worse.groupby(combo, sort=False).ngroup().to_numpy()  # numbered in order of first appearance
    kinds = worse[combo].drop_duplicates()
    texts = np.array([f"{labels.get(m, m)}, {group_label(g)}: {c0} → {c1} in {now_year}"
                      for m, g, c0, c1 in zip(*(kinds[c].tolist() for c in combo), strict=True)], dtype=object)
    return pd.DataFrame({
        "school_id": worse["school_id"], "change": "status_worsened",
        "detail": pd.Series(texts[codes], index=worse.index, dtype="str"),
        "link": "school?school=" + worse["school_id"].astype("str") + f"&year={now_year}",
    })


def goals_moved_off_track(progress: pd.DataFrame, then_year: int, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Goals whose latest measured year after `then_year` is off track, and were not off track by then; each
    named by its metric and group, as people know it (its id is in its link)."""
    if progress.empty:
        return _empty()
    measured = progress[progress["progress"] != "not_measured"].sort_values("school_year")
    after = measured[measured["school_year"] > then_year].groupby("goal_id").tail(1)
    before = measured[measured["school_year"] <= then_year].groupby("goal_id").tail(1)
    was_off = set(before.loc[before["progress"] == "off_track", "goal_id"])
    off = after[(after["progress"] == "off_track") & ~after["goal_id"].isin(was_off)]
    return pd.DataFrame({
        "school_id": off["school_id"], "change": "goal_off_track",
        "detail": [f"goal on {(labels or {}).get(m, m)}, {group_label(g)}: {v:.1f} in {y} against a trajectory of "
                   f"{t:.1f}"
                   for m, g, v, y, t in zip(off["metric"], off["student_group"], off["value"], off["school_year"],
                                            off["trajectory"], strict=True)],
        "link": [f"plans?school={s}&goal={g}" for s, g in zip(off["school_id"], off["goal_id"], strict=True)],
    })


def new_signals(series: pd.DataFrame, since: date) -> pd.DataFrame:
    """Series (school_id, source, link, period, value) with a new shift or trend after `since`.

    Every series' run chart is drawn at once (:func:`analytics.stats.run_charts.run_charts`), then again
    over its points up to the meeting: a series whose chart then already ended in a signal is left out."""
    if series.empty:
        return _empty()
    cut = pd.Timestamp(since)
    keys = ["school_id", "source", "link"]
    now = run_charts(series, keys)
    after = now[(now["period"] > cut) & (now["shift"] | now["trend"])]
    if after.empty:
        return _empty()
    earlier = run_charts(series[series["period"] <= cut], keys).drop_duplicates(keys, keep="last")
    running = earlier.loc[earlier["shift"] | earlier["trend"], keys].assign(_running=True)
    found = (after.groupby(keys, sort=True).agg(shift=("shift", "any"), trend=("trend", "any"), n=("series", "size"))
             .reset_index().merge(running, on=keys, how="left"))
    found = found[found["_running"].isna()]  # the signal was already running at the meeting
    return pd.DataFrame({
        "school_id": found["school_id"], "change": "run_chart_signal",
        "detail": [f"{source}: {' and '.join(k for k, on in (('shift', s), ('trend', t)) if on)} since "
                   f"{since:%Y-%m-%d} ({n} signal points)"
                   for source, s, t, n in zip(found["source"], found["shift"], found["trend"], found["n"],
                                              strict=True)],
        "link": found["link"]}, columns=["school_id", "change", "detail", "link"]).reset_index(drop=True)


def new_years(data_years: pd.DataFrame, then_year: int) -> pd.DataFrame:
    """Schools with data (school_id, school_year) for a year after the meeting's year."""
    newer = data_years[data_years["school_year"] > then_year]
    if newer.empty:
        return _empty()
    latest = newer.groupby("school_id")["school_year"].max().reset_index()
    return pd.DataFrame({
        "school_id": latest["school_id"], "change": "new_year",
        "detail": [f"data for {y - 1}-{str(y)[-2:]} (school year {y}) is on file" for y in latest["school_year"]],
        "link": [f"school?school={s}&year={y}" for s, y in zip(latest["school_id"], latest["school_year"],
                                                               strict=True)],
    })


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["school_id", "change", "detail", "link"])


def combine(parts: list[pd.DataFrame], schools: pd.DataFrame, since: date) -> pd.DataFrame:
    """One table in the CSV contract's columns, ordered by school then by kind of change."""
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame(columns=CHANGE_COLUMNS)
    out = one_row_per_school_and_kind(pd.concat(frames, ignore_index=True))
    names = dict(zip(schools["school_id"], schools["school_name"], strict=True))
    out["school_name"] = out["school_id"].map(names).fillna("")
    out["since"] = since.isoformat()
    out["_kind"] = out["change"].map({k: i for i, k in enumerate(CHANGE_KINDS)})
    out = out.sort_values(["school_name", "school_id", "_kind", "detail"], ignore_index=True)
    return out[CHANGE_COLUMNS]


def one_row_per_school_and_kind(changes: pd.DataFrame, shown: int = 4) -> pd.DataFrame:
    """A school flagged several times for one kind of change gets one row: the details joined (at most
    `shown`, then how many more), the link of the first, in order of first appearance. Only the details
    shown are joined: the k-th of every school and kind at once, for k up to `shown`.

    Rows already one per school and kind come back as they were, so each kind's rows may be joined as soon as
    they are found (:func:`combine` of them is that of the rows they were joined from)."""
    keys = ["school_id", "change"]
    work = changes.assign(_order=np.arange(len(changes)))
    ranked = work.sort_values(keys + ["detail"], kind="stable")
    by = ranked.groupby(keys, sort=False)
    group, place = by.ngroup().to_numpy(), by.cumcount().to_numpy()
    detail = ranked["detail"].to_numpy(dtype=object)
    joined = detail[place == 0].copy()  # one per group, in group order
    for k in range(1, shown):
        at = place == k
        joined[group[at]] = joined[group[at]] + "; " + detail[at]
    n = np.bincount(group)
    more = n > shown
    joined[more] = joined[more] + "; and " + (n[more] - shown).astype(str).astype(object) + " more"
    heads = ranked.loc[place == 0, keys].assign(detail=pd.Series(joined, dtype="str").to_numpy(), n=n)
    first = work.drop_duplicates(keys)[[*keys, "link", "_order"]]
    out = first.merge(heads, on=keys, how="left").sort_values("_order", ignore_index=True)
    return out[["school_id", "change", "detail", "link", "n"]]


def listed_items(detail: pd.Series) -> pd.Series:
    """How many changes each row of :func:`one_row_per_school_and_kind` stands for: its details joined by "; ",
    the last of them "and N more" when more were found than shown."""
    parts = detail.str.count("; ") + 1
    more = pd.to_numeric(detail.str.extract(r"; and (\d+) more$", expand=False))
    return parts.where(more.isna(), parts - 1 + more).astype("int64")


def most_serious_first(changes: pd.DataFrame, names: pd.Series | None = None) -> pd.DataFrame:
    """One row a school with its changes of each kind (how many; 0 for none), the most serious first: more kinds
    of concern first (a new year of data is news, not a concern), then more new risk-ratio flags, goals now off
    track, worsened colours and new run-chart signals, in that order; then by name. Columns: ``school_id``,
    ``school`` (`names`' label, else the list's name), ``concerns`` (kinds of concern) and one per kind of
    :data:`CHANGE_KINDS`."""
    counts = (changes.assign(items=listed_items(changes["detail"]))
              .pivot_table(index="school_id", columns="change", values="items", aggfunc="sum", fill_value=0)
              .reindex(columns=list(CHANGE_KINDS), fill_value=0).astype("int64"))
    named = changes.drop_duplicates("school_id").set_index("school_id")["school_name"]
    out = counts.reset_index()
    out.columns.name = None
    out.insert(1, "school", out["school_id"].map(names if names is not None else named).fillna(
        out["school_id"].map(named)))
    out.insert(2, "concerns", (out[list(CONCERNS)] > 0).sum(axis=1).astype("int64"))
    order = ["concerns", *CONCERNS, "school", "school_id"]
    return out.sort_values(order, ascending=[False] * (1 + len(CONCERNS)) + [True, True], kind="stable",
                           ignore_index=True)


def by_cluster(changes: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """Schools with each kind of change, per cluster: ``cluster``, ``schools`` (in the cluster), ``with_changes``
    (schools with any change) and one column per kind present (schools with it, as :func:`summary` counts), in
    cluster order. Every cluster of `schools` has a row (0 where nothing changed); a school with no cluster
    counts under "(no cluster)"."""
    no_cluster = "(no cluster)"
    cluster_of = schools.set_index("school_id")["cluster"].fillna(no_cluster)
    pairs = changes.drop_duplicates(["school_id", "change"])
    cluster = pairs["school_id"].map(cluster_of).fillna(no_cluster)
    size = cluster_of.value_counts()
    out = pd.DataFrame({"cluster": sorted(size.index)})
    out["schools"] = out["cluster"].map(size).astype("int64")
    counts = {"with_changes": pairs.groupby(cluster)["school_id"].nunique()}
    counts |= {kind: (pairs["change"] == kind).groupby(cluster).sum()
               for kind in CHANGE_KINDS if kind in set(pairs["change"])}
    for column, per_cluster in counts.items():
        out[column] = out["cluster"].map(per_cluster).fillna(0).astype("int64")
    return out


def summary(changes: pd.DataFrame, names: pd.Series | None = None) -> str:
    """"14 schools with changes: 3 with a new risk-ratio flag, 12 with a worsened status, ..." (schools with
    each kind of change, as the list holds one row a school and kind), then the schools with the most kinds ("...
    Most kinds of change: Lincoln ES (North) with 4, ...").

    `names`: school_id -> the name people read (:func:`analytics.data.catalog.school_labels` of the scope,
    which adds the cluster or id where two schools share a name); without it, the list's own names are told
    apart by id."""
    if changes.empty:
        return "No school was newly flagged since the meeting."
    counts = changes.drop_duplicates(["school_id", "change"])["change"].value_counts()
    parts = [f"{counts[k]:,} with {CHANGE_HAS[k]}" for k in CHANGE_KINDS if k in counts]
    n = changes["school_id"].nunique()
    text = f"{counted(n, 'school')} with changes: " + ", ".join(parts) + "."
    if "school_name" in changes and n > 1:
        if names is None:
            names = school_labels(changes[["school_id", "school_name"]].drop_duplicates("school_id"))
        ranked = most_serious_first(changes, names)  # ties in kinds: the most serious first
        ranked["kinds"] = (ranked[list(CHANGE_KINDS)] > 0).sum(axis=1)
        most = ranked.sort_values("kinds", ascending=False, kind="stable").head(3)
        text += " Most kinds of change: " + ", ".join(f"{name} with {k}" for name, k in
                                                      zip(most["school"], most["kinds"], strict=True)) + "."
    return text
