"""A report-card style district generated for tests: percentages only, no counts.

Shaped like a state's public school report card: 1,319 schools in 24 counties (used as clusters, one
of them with 195 schools), one metric (`read_proficient`) given only as `value`, the `ALL` group only,
one school year, some values suppressed (`*`), coordinates for most schools. Imported through the
real importer, as an editor would.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from analytics.data import storage
from analytics.data.importer import import_bytes

N_SCHOOLS, N_COUNTIES, BIG_COUNTY_SCHOOLS, YEAR, METRIC = 1319, 24, 195, 2024, "read_proficient"
COUNTIES = [f"{name} County" for name in (
    "Allegany", "Anne Arundel", "Baltimore", "Calvert", "Caroline", "Carroll", "Cecil", "Charles", "Dorchester",
    "Frederick", "Garrett", "Harford", "Howard", "Kent", "Montgomery", "Prince George's", "Queen Anne's",
    "St. Mary's", "Somerset", "Talbot", "Washington", "Wicomico", "Worcester", "Baltimore City")]
BIG_COUNTY = "Montgomery County"


def frames(seed: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(schools, metrics) tables as a report card would publish them (metrics: `value` only)."""
    rng = np.random.default_rng(seed)
    others = [c for c in COUNTIES if c != BIG_COUNTY]
    rest = N_SCHOOLS - BIG_COUNTY_SCHOOLS
    sizes = rng.multinomial(rest - len(others) * 10, np.ones(len(others)) / len(others)) + 10
    county = np.array([BIG_COUNTY] * BIG_COUNTY_SCHOOLS + [c for c, n in zip(others, sizes, strict=True)
                                                            for _ in range(n)])
    centres = {c: (38.0 + 0.45 * (i // 6) + 0.1 * rng.random(), -79.4 + 0.65 * (i % 6) + 0.1 * rng.random())
               for i, c in enumerate(COUNTIES)}  # a 6 x 4 grid of counties, as on a state map
    lat = np.array([centres[c][0] for c in county]) + rng.normal(0, 0.08, N_SCHOOLS)
    lon = np.array([centres[c][1] for c in county]) + rng.normal(0, 0.10, N_SCHOOLS)
    ids = [f"{240000 + i:06d}" for i in range(N_SCHOOLS)]
    level = rng.choice(["ES", "MS", "HS"], N_SCHOOLS, p=[0.6, 0.2, 0.2])
    schools = pd.DataFrame({
        "school_id": ids, "school_name": [f"{c.split()[0]} {lvl} {i % 1000:03d}" for i, (c, lvl) in
                                          enumerate(zip(county, level, strict=True))],
        "level": level, "cluster": county,
        "latitude": np.where(rng.random(N_SCHOOLS) < 0.97, lat.round(5), np.nan),
        "longitude": lon.round(5),
    })
    schools.loc[schools["latitude"].isna(), "longitude"] = np.nan
    county_mean = {c: rng.uniform(30, 65) for c in COUNTIES}
    values = np.clip([county_mean[c] + rng.normal(0, 12) for c in county], 2, 98).round(1)
    text = pd.Series(values).map(lambda v: f"{v:.1f}").where(rng.random(N_SCHOOLS) > 0.04, "*")
    metrics = pd.DataFrame({"school_id": ids, "school_year": f"{YEAR - 1}-{str(YEAR)[-2:]}", "metric": METRIC,
                            "student_group": "ALL", "value": text})
    return schools, metrics


def build(url: str) -> str:
    """Create the database at `url` and import the report card into it; returns the URL."""
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    schools, metrics = frames()
    files = []
    for name, df in (("schools.csv", schools), ("metrics.csv", metrics)):
        buffer = io.StringIO()
        df.to_csv(buffer, index=False)
        files.append((name, buffer.getvalue().encode()))
    report = import_bytes(engine, files, who="test")
    assert not report.problems, report.problems[:3]
    return url
