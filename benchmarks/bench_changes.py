"""Where the time of *what changed* goes: `changes_view` for the district and one cluster, and each of its
parts (DESIGN §8 and §9), on a demo database (SQLite, built when missing) or any `--url`.

Parts, in the order `changes_view` computes them: risk-ratio flags (`dispro`), status colours (`worsened`),
goal progress (`goals`; the app passes the district's, prepared once), dated series (`series`: cycle
measures and suspensions per month from the database) and their run charts (`signals`), years of data
(`years`) and the combined list of the changes all five give (`combine`). `changes_view_given_progress_s` is the
list as the page makes it, from the goal progress it already holds (its first view after an import, drawn before
the discipline tables); `changes_view_given_prepared_s` as it makes it once the discipline step has made the
district's flagged rows and every school's suspensions per month, and the district's view has made its
colours for the meeting's year (any later view: a recorded meeting, another date, a cluster); the colours and
months themselves are `district_colours_s` and `school_months_s`. Each figure is the
best of `--repeat` runs, beside the floor of one plain read of every metrics row of the latest year. Writes
benchmarks/results/changes.json.

    python benchmarks/bench_changes.py --db /tmp/ssif_2000.db --schools 2000
    python benchmarks/bench_changes.py --url postgresql+psycopg://... --cluster Ashford
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

import pandas as pd
from _common import best_of, demo_database, write_results

from analytics.data import aggregates_discipline, loads, storage
from analytics.data.catalog import metric_catalog
from analytics.workspace import changes as change_rules
from analytics.workspace import views


def parts(engine, cluster: str | None, since: date, repeat: int) -> dict[str, float]:
    """Seconds of each part of `changes_view` for a scope, computed as it computes them."""
    settings = views.DEFAULT_SETTINGS
    schools, ids = views.scope_ids(engine, cluster)
    then_year = change_rules.year_of_record(since)
    now_year = loads.available_years(engine)[-1]
    catalog = metric_catalog(loads.load_metric_definitions(engine))
    labels = dict(zip(catalog["metric"], catalog["label"], strict=True))
    series = views._series(engine, ids)
    made = {"dispro": lambda: views._dispro(engine, ids, settings, then_year, now_year),
            "worsened": lambda: views._worsened(engine, cluster, None, then_year, now_year, labels, settings),
            "goals": lambda: views.goals_progress(engine, cluster),
            "series": lambda: views._series(engine, ids),
            "signals": lambda: change_rules.new_signals(series, since),
            "years": lambda: views._data_years(engine, ids, then_year)}
    out = {name: round(best_of(fn, repeat), 3) for name, fn in made.items()}
    found = [change_rules.new_rr_flags(made["dispro"](), then_year, now_year), made["worsened"](),
             change_rules.goals_moved_off_track(made["goals"]()[1], then_year, labels),
             change_rules.new_signals(series, since), change_rules.new_years(made["years"](), then_year)]
    out["combine"] = round(best_of(lambda: change_rules.combine(found, schools, since), repeat), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a database URL (default: a SQLite demo database)")
    parser.add_argument("--db", type=Path, help="the SQLite demo database (built when missing)")
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--cluster", help="the cluster timed (default: the first)")
    parser.add_argument("--since", default="2025-02-27", help="the meeting date (YYYY-MM-DD)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{args.schools}.db"
    url = args.url or demo_database(db, args.schools)
    engine = storage.get_engine(url)
    since = date.fromisoformat(args.since)
    cluster = args.cluster or sorted(loads.load_schools(engine)["cluster"].unique())[0]
    latest = loads.available_years(engine)[-1]
    floor = best_of(lambda: loads.load_metrics(engine, years=[latest]), args.repeat)
    # As the discipline step does.
    every = pd.concat(aggregates_discipline.disproportionality_parts(engine), ignore_index=True)
    district_flags = every[every["flagged"]]
    del every
    then_year, now_year = change_rules.year_of_record(since), latest
    colours = views.district_colours(engine, then_year, now_year)  # as the district's view makes them once
    months = views.monthly_suspensions(engine, None)  # as the discipline step
    made = {"district_colours_s": round(best_of(lambda: views.district_colours(engine, then_year, now_year),
                                                args.repeat), 3),
            "school_months_s": round(best_of(lambda: views.monthly_suspensions(engine, None), args.repeat), 3)}
    print(made, flush=True)
    members = loads.load_schools(engine)
    scopes = {}
    for name, scope in (("district", None), (f"cluster {cluster}", cluster)):
        total = best_of(lambda s=scope: views.changes_view(engine, cluster=s, since=since), args.repeat)
        progress = views.goals_progress(engine, scope)[1]  # as the page passes it: every goal's, made once
        given = best_of(lambda s=scope, p=progress: views.changes_view(engine, cluster=s, since=since, progress=p),
                        args.repeat)
        ids = set(members.loc[members["cluster"] == scope, "school_id"]) if scope else None
        flags = district_flags if ids is None else district_flags[district_flags["school_id"].isin(ids)]
        prepared = best_of(lambda s=scope, p=progress, f=flags: views.changes_view(
            engine, cluster=s, since=since, progress=p, flagged=f, colours=colours, monthly=months), args.repeat)
        scopes[name] = {"changes_view_s": round(total, 3), "changes_view_given_progress_s": round(given, 3),
                        "changes_view_given_prepared_s": round(prepared, 3),
                        "parts_s": parts(engine, scope, since, args.repeat)}
        print(name, scopes[name], flush=True)
    write_results("changes", {"database": engine.dialect.name, "since": args.since,
                              "floor_load_latest_year_metrics_s": round(floor, 3), "prepared": made, "scopes": scopes,
                              "note": "machines are noisy: compare figures with the floor of the same run"})


if __name__ == "__main__":
    main()
