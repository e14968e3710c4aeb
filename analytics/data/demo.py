"""A deterministic, realistic demo district (DESIGN §6).

`build_demo` makes every table from one seeded ``numpy.random.Generator``: schools in feeder-pattern
clusters (one high school, one or two middle schools, four to seven elementary schools), six school
years of SSIF metrics for every student group with binomial noise on the counts, CRDC-shaped discipline
counts whose race rows add up to ``ALL``, student-level incidents with pseudonymous keys for the last two
years, and PDSA cycles. About a fifth of the schools, chosen at random (so that with no planted effect
restorative-practices and comparison schools share the same trends), start restorative practices in
staggered years; from that year their expected suspension rate falls by ``rp_effect`` percentage points.
Everything is vectorised so a state-sized district (thousands of schools) builds in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.data.catalog import RACE_GROUPS
from analytics.learning.demo import build_learning
from analytics.outputs.labels import counted

_CLUSTER_NAMES = (
    "Northwood", "Eastern Valley", "Riverside", "Glenmont", "Oak Ridge", "Seneca Creek", "Fairview",
    "Lakeland", "Brookside", "Cedar Hill", "Westfield", "Kingsley", "Pine Grove", "Harbor View",
    "Maple Heights", "Stonebridge", "Clearwater", "Ashford", "Bel Air", "Meadowbrook", "Sandy Spring",
    "Highland Park", "Fox Chapel", "Whitman", "Granite Falls", "Quince Orchard", "Mill Creek", "Forest Knolls",
)
_PLACES = (
    "Adams", "St. Mary's", "O'Connor", "Banneker", "Carver", "Douglass", "Elm Street", "Franklin",
    "Garrett Park", "Harriet Tubman", "Jackson Road", "Kennedy", "Lincoln", "Martin Luther King Jr.",
    "Nightingale", "Oakview", "Parkland", "Rosa Parks", "Sligo", "Thurgood Marshall", "Upton", "Viers Mill",
    "Washington", "Wheaton Woods", "Brown's Station", "Cloverly", "Dufief", "Goshen", "Hallie Wells",
    "Jones Lane", "Lakewood", "Mill Pond", "Piney Branch", "Ridgeview", "Sherwood", "Takoma", "Wood Acres",
)
_LEVEL_SUFFIX = {"ES": "Elementary", "MS": "Middle", "HS": "High"}
_RACES = tuple(RACE_GROUPS)  # AM AS BL HI PI WH MU
_RACE_BASE_SHARE = np.array([0.004, 0.13, 0.22, 0.30, 0.002, 0.28, 0.064])
_SERVICE = ("FARMS", "EML", "SWD")
_GROUPS = ("ALL", *_RACES, *_SERVICE, "FEMALE", "MALE")

# Log-odds offsets by group for "higher is better" measures (achievement gaps), per SSIF patterns.
_ACHIEVEMENT_OFFSET = {
    "ALL": 0.0, "AM": -0.45, "AS": 0.75, "BL": -0.6, "HI": -0.55, "PI": -0.3, "WH": 0.55, "MU": 0.15,
    "FARMS": -0.6, "EML": -0.8, "SWD": -1.1, "FEMALE": 0.12, "MALE": -0.12,
}
# Relative suspension risk by group (Black students and students with disabilities ~2-3x others).
_SUSPENSION_RR = {
    "AM": 1.6, "AS": 0.3, "BL": 2.6, "HI": 1.1, "PI": 1.3, "WH": 0.6, "MU": 1.3,
    "FARMS": 1.7, "EML": 0.8, "SWD": 2.3, "FEMALE": 0.55, "MALE": 1.45,
}


# (metric, levels, base probability by level, share of students measured, yearly log-odds trend, sign)
# sign +1: higher is better (group offsets apply as is); -1: lower is better (offsets reversed).
_METRICS = (
    ("read_proficient", ("ES", "MS", "HS"), {"ES": 0.50, "MS": 0.47, "HS": 0.52}, 0.96, 0.03, 1),
    ("math_proficient", ("ES", "MS", "HS"), {"ES": 0.45, "MS": 0.36, "HS": 0.33}, 0.96, 0.04, 1),
    ("ela_growth", ("ES", "MS", "HS"), {"ES": 0.55, "MS": 0.52, "HS": 0.50}, 0.80, 0.02, 1),
    ("math_growth", ("ES", "MS", "HS"), {"ES": 0.53, "MS": 0.50, "HS": 0.48}, 0.80, 0.02, 1),
    ("chronic_absence", ("ES", "MS", "HS"), {"ES": 0.14, "MS": 0.19, "HS": 0.26}, 1.0, -0.05, -1),
    ("attendance_rate", ("ES", "MS", "HS"), {"ES": 0.94, "MS": 0.93, "HS": 0.91}, 1.0, 0.02, 1),
    ("algebra1_by_grade8", ("MS",), {"MS": 0.42}, 0.33, 0.04, 1),
    ("grade9_english_c", ("HS",), {"HS": 0.78}, 0.26, 0.03, 1),
    ("grade9_math_c", ("HS",), {"HS": 0.70}, 0.26, 0.03, 1),
    ("grad_rate_4yr", ("HS",), {"HS": 0.87}, 0.24, 0.03, 1),
    ("student_engagement", ("ES", "MS", "HS"), {"ES": 0.78, "MS": 0.66, "HS": 0.61}, 0.70, 0.01, 1),
)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _cluster_names(n: int) -> list[str]:
    base = list(_CLUSTER_NAMES)
    return [base[i % len(base)] + ("" if i < len(base) else f" {i // len(base) + 1}") for i in range(n)]


def _make_schools(rng: np.random.Generator, n_schools: int, end_year: int, years: int) -> pd.DataFrame:
    n_clusters = max(1, round(n_schools / 8))
    # Each cluster: 1 HS, 1-2 MS, the rest ES (4-7 where the count allows).
    sizes = np.full(n_clusters, n_schools // n_clusters)
    sizes[: n_schools - sizes.sum()] += 1
    levels, clusters = [], []
    for c, size in enumerate(sizes):
        n_ms = 2 if size >= 8 else 1 if size >= 3 else 0
        n_hs = 1 if size >= 2 else 0
        levels += ["HS"] * n_hs + ["MS"] * n_ms + ["ES"] * (size - n_hs - n_ms)
        clusters += [c] * size
    levels = np.array(levels)
    clusters = np.array(clusters)
    names = _cluster_names(n_clusters)

    places = np.array(_PLACES)[rng.integers(0, len(_PLACES), n_schools)]
    school_name = pd.Series(places).str.cat(pd.Series([_LEVEL_SUFFIX[lv] for lv in levels]), sep=" ")
    # Disambiguate accidental repeats within a cluster, but keep a few district-wide duplicates on purpose.
    dup_rank = school_name.groupby([school_name, pd.Series(clusters)]).cumcount()
    school_name = school_name.where(dup_rank == 0, school_name + " " + (dup_rank + 1).astype(str))
    if n_schools >= 20:
        school_name.iloc[n_schools // 2] = school_name.iloc[3]  # same name, different cluster

    centre_lat, centre_lon = 39.05, -77.10
    c_lat = centre_lat + rng.uniform(-0.22, 0.22, n_clusters)
    c_lon = centre_lon + rng.uniform(-0.30, 0.30, n_clusters)
    lat = c_lat[clusters] + rng.normal(0, 0.025, n_schools)
    lon = c_lon[clusters] + rng.normal(0, 0.032, n_schools)

    low, high = {"ES": 250, "MS": 500, "HS": 900}, {"ES": 700, "MS": 1100, "HS": 2200}
    enrollment = np.array([rng.integers(low[lv], high[lv]) for lv in levels])
    tiny = rng.choice(np.flatnonzero(levels == "ES"), size=max(1, n_schools // 50), replace=False)
    enrollment[tiny] = rng.integers(60, 150, tiny.size)

    cluster_poverty = rng.beta(2, 2.5, n_clusters)
    farms_share = np.clip(cluster_poverty[clusters] + rng.normal(0, 0.08, n_schools), 0.03, 0.95)

    rp = np.zeros(n_schools, dtype=bool)
    rp[rng.choice(n_schools, size=round(0.2 * n_schools), replace=False)] = True
    starts = np.array([end_year - 3, end_year - 2, end_year - 1]) if years >= 4 else np.array([end_year])
    rp_start = np.where(rp, rng.choice(starts, n_schools), np.nan)

    width = len(str(n_schools)) + 1
    return pd.DataFrame(
        {
            "school_id": [f"{100000 + i:0{width}d}" for i in range(n_schools)],
            "school_name": school_name.to_numpy(),
            "level": levels,
            "cluster": np.array(names)[clusters],
            "region": np.where(c_lat[clusters] >= centre_lat, "Upcounty", "Downcounty"),
            "latitude": lat.round(5),
            "longitude": lon.round(5),
            "enrollment": enrollment,
            "rp_start_year": pd.array(rp_start, dtype="Int64"),
            "title1": farms_share > 0.55,
            "_farms_share": farms_share,
            "_cluster_poverty": cluster_poverty[clusters],
        }
    )


def _group_counts(rng: np.random.Generator, schools: pd.DataFrame, year_list: list[int]) -> pd.DataFrame:
    """Enrolled students per school x year x group; race and gender rows add up to ALL."""
    n, n_years = len(schools), len(year_list)
    poverty = schools["_cluster_poverty"].to_numpy()
    # Poorer clusters have larger Black and Hispanic shares, per typical district patterns.
    tilt = np.outer(poverty - 0.45, [0, -0.08, 0.25, 0.22, 0, -0.45, 0])
    shares = np.clip(_RACE_BASE_SHARE + tilt + rng.normal(0, 0.03, (n, 7)) * (_RACE_BASE_SHARE > 0.01), 0.001, None)
    shares /= shares.sum(axis=1, keepdims=True)
    drift = np.cumprod(1 + rng.normal(0.0, 0.03, (n, n_years)), axis=1)
    total = np.maximum(40, (schools["enrollment"].to_numpy()[:, None] * drift).round().astype(int))
    race = rng.multinomial(total.ravel(), np.repeat(shares, n_years, axis=0))  # (n*years, 7)
    farms = rng.binomial(total.ravel(), np.repeat(schools["_farms_share"].to_numpy(), n_years))
    eml_share = np.clip(0.05 + 0.45 * shares[:, 3], 0.01, 0.6)
    eml = rng.binomial(total.ravel(), np.repeat(eml_share, n_years))
    swd = rng.binomial(total.ravel(), 0.12)
    female = rng.binomial(total.ravel(), 0.49)
    counts = np.column_stack([total.ravel(), race, farms, eml, swd, female, total.ravel() - female])
    frame = pd.DataFrame(counts, columns=list(_GROUPS))
    frame["school_id"] = np.repeat(schools["school_id"].to_numpy(), n_years)
    frame["school_year"] = np.tile(year_list, n)
    return frame


def _long(counts: pd.DataFrame, value_name: str) -> pd.DataFrame:
    return counts.melt(id_vars=["school_id", "school_year"], value_vars=list(_GROUPS),
                       var_name="student_group", value_name=value_name)


def _make_metrics(rng: np.random.Generator, schools: pd.DataFrame, enrolled: pd.DataFrame,
                  year_list: list[int]) -> pd.DataFrame:
    info = schools.set_index("school_id")
    quality = pd.Series(rng.normal(0, 0.35, len(schools)), index=schools["school_id"])
    improving = pd.Series(rng.normal(0, 0.04, len(schools)), index=schools["school_id"])
    frames = []
    # Per-row school facts looked up once, then sliced per metric (a state-sized district has millions of rows).
    school_level = enrolled["school_id"].map(info["level"])
    school_poverty = enrolled["school_id"].map(info["_farms_share"]).to_numpy() - 0.45
    school_quality = quality.reindex(enrolled["school_id"]).to_numpy()
    school_improving = improving.reindex(enrolled["school_id"]).to_numpy()
    group_offset = enrolled["student_group"].map(_ACHIEVEMENT_OFFSET).to_numpy()
    for metric, levels, base, coverage, trend, sign in _METRICS:
        at = school_level.isin(levels).to_numpy()
        rows = enrolled[at]
        t = rows["school_year"].to_numpy() - year_list[0]
        logits = (
            school_level[at].map({lv: _logit(p) for lv, p in base.items()}).to_numpy(dtype=float)
            + group_offset[at] * sign
            + sign * (school_quality[at] - 0.6 * school_poverty[at])
            + t * (trend + sign * school_improving[at])
        )
        denominator = rng.binomial(rows["enrolled"].to_numpy(), coverage)
        numerator = rng.binomial(denominator, _expit(logits))
        frame = rows[["school_id", "school_year", "student_group"]].copy()
        frame["metric"] = metric
        frame["numerator"] = numerator
        frame["denominator"] = denominator
        frames.append(frame[denominator > 0])
    metrics = pd.concat(frames, ignore_index=True)
    # ALL counts are the sum of the race rows, as in a real file where every student has one race.
    keys = ["school_id", "school_year", "metric"]
    race_sums = metrics[metrics["student_group"].isin(_RACES)].groupby(keys)[["numerator", "denominator"]].sum()
    is_all = metrics["student_group"] == "ALL"
    summed = metrics.loc[is_all, keys].join(race_sums, on=keys)
    metrics.loc[is_all, ["numerator", "denominator"]] = summed[["numerator", "denominator"]].to_numpy()
    metrics["value"] = (100.0 * metrics["numerator"] / metrics["denominator"]).round(4)
    # Targets (School Performance Plan) for ALL rows: last year's value moved 2 points the right way.
    higher = {m[0]: m[5] > 0 for m in _METRICS}
    metrics = metrics.sort_values(["school_id", "metric", "student_group", "school_year"], ignore_index=True)
    previous = metrics.groupby(["school_id", "metric", "student_group"])["value"].shift(1)
    step = np.where(metrics["metric"].map(higher), 2.0, -2.0)
    target = (previous + step).clip(0, 100).round(1)
    metrics["target"] = np.where(metrics["student_group"] == "ALL", target, np.nan)
    return metrics[["school_id", "school_year", "metric", "student_group", "numerator", "denominator", "value",
                    "target"]]


def _suspension_probability(rng, schools, year_list, rp_effect) -> np.ndarray:
    """Expected ALL suspension rate per school x year (proportion), with the planted RP effect."""
    base = schools["level"].map({"ES": 0.018, "MS": 0.07, "HS": 0.058}).to_numpy()
    school_eff = np.exp(rng.normal(0, 0.35, len(schools)) + 0.6 * (schools["_farms_share"].to_numpy() - 0.45))
    year_eff = np.exp(np.cumsum(rng.normal(-0.03, 0.06, len(year_list))))
    p = base[:, None] * school_eff[:, None] * year_eff[None, :]
    start = schools["rp_start_year"].to_numpy()
    treated = np.asarray(year_list)[None, :] >= start[:, None]  # NaN start compares False
    p = np.where(treated, np.maximum(p - rp_effect / 100.0, 0.25 * p), p)
    return np.clip(p, 0.002, 0.5)


def _make_discipline(rng, schools, counts, year_list, rp_effect) -> pd.DataFrame:
    n_years = len(year_list)
    p_all = _suspension_probability(rng, schools, year_list, rp_effect).ravel()
    race_n = counts[list(_RACES)].to_numpy()
    total = counts["ALL"].to_numpy()
    rr = np.array([_SUSPENSION_RR[r] for r in _RACES])
    norm = (race_n * rr).sum(axis=1) / np.maximum(total, 1)
    p_race = np.clip(p_all[:, None] * rr[None, :] / norm[:, None], 0, 0.9)
    race_susp = rng.binomial(race_n, p_race)
    race_oss = rng.binomial(race_susp, 0.6)
    race_iss = np.maximum(rng.binomial(race_susp, 0.55), race_susp - race_oss)
    race_exp = rng.binomial(race_n, np.clip(p_all[:, None] * 0.01 * rr, 0, 1))
    race_law = rng.binomial(race_n, np.clip(p_all[:, None] * 0.09 * rr, 0, 1))
    race_days = np.round(race_oss * rng.gamma(2.0, 1.3, race_oss.shape), 1)
    race_inc = np.round(race_susp * 1.7 + rng.poisson(0.4 * race_susp + 0.2)).astype(int)

    all_susp = race_susp.sum(axis=1)
    blocks = {"ALL": (total, all_susp, race_oss.sum(1), race_iss.sum(1), race_exp.sum(1), race_law.sum(1),
                      race_days.sum(1), race_inc.sum(1))}
    for j, r in enumerate(_RACES):
        blocks[r] = (race_n[:, j], race_susp[:, j], race_oss[:, j], race_iss[:, j], race_exp[:, j],
                     race_law[:, j], race_days[:, j], race_inc[:, j])
    female_n = counts["FEMALE"].to_numpy()
    for g in (*_SERVICE, "FEMALE"):
        n_g = counts[g].to_numpy()
        share = n_g * _SUSPENSION_RR[g] / (n_g * _SUSPENSION_RR[g] + (total - n_g) * 1.0 + 1e-9)
        susp = np.minimum(rng.binomial(all_susp, np.clip(share, 0, 1)), n_g)
        oss = rng.binomial(susp, 0.6)
        iss = np.maximum(rng.binomial(susp, 0.55), susp - oss)
        blocks[g] = (n_g, susp, oss, iss, rng.binomial(n_g, np.clip(p_all * 0.01, 0, 1)),
                     rng.binomial(n_g, np.clip(p_all * 0.09 * _SUSPENSION_RR[g], 0, 1)),
                     np.round(oss * 2.6, 1), np.round(susp * 1.7).astype(int))
    # Boys are the students not counted as girls, so FEMALE + MALE add up to ALL.
    male_n, male_susp = total - female_n, np.maximum(all_susp - blocks["FEMALE"][1], 0)
    male_oss = rng.binomial(male_susp, 0.6)
    male_iss = np.maximum(rng.binomial(male_susp, 0.55), male_susp - male_oss)
    blocks["MALE"] = (male_n, male_susp, male_oss, male_iss,
                      np.maximum(blocks["ALL"][4] - blocks["FEMALE"][4], 0), np.maximum(blocks["ALL"][5] - blocks["FEMALE"][5], 0),
                      np.round(male_oss * 2.6, 1), np.round(male_susp * 1.7).astype(int))

    rp_after = (np.asarray(year_list)[None, :] >= schools["rp_start_year"].to_numpy()[:, None]).ravel()
    frames = []
    cols = ["enrolled", "students_suspended", "students_oss", "students_iss", "students_expelled",
            "law_referrals", "oss_days", "incidents"]
    for g in _GROUPS:
        frame = pd.DataFrame(dict(zip(cols, blocks[g], strict=True)))
        frame["school_id"] = counts["school_id"].to_numpy()
        frame["school_year"] = counts["school_year"].to_numpy()
        frame["student_group"] = g
        frame["restorative_conferences"] = rng.poisson(frame["enrolled"] * np.where(rp_after, 0.05, 0.01))
        frames.append(frame[frame["enrolled"] > 0])
    disc = pd.concat(frames, ignore_index=True)
    for c in ("students_oss", "students_iss", "students_expelled", "law_referrals"):
        disc[c] = np.minimum(disc[c], disc["enrolled"])
    disc = _within_all(disc)
    del n_years
    return disc[["school_id", "school_year", "student_group", "enrolled", "students_suspended", "students_iss",
                 "students_oss", "students_expelled", "oss_days", "incidents", "law_referrals",
                 "restorative_conferences"]]


def _within_all(disc: pd.DataFrame) -> pd.DataFrame:
    """Every group is part of its school's students: ALL's conferences are the race rows' sum, and no
    group's count exceeds ALL's (the importer refuses a file where one does)."""
    key = ["school_id", "school_year"]
    is_all = disc["student_group"] == "ALL"
    race_sum = disc[disc["student_group"].isin(_RACES)].groupby(key)["restorative_conferences"].sum()
    all_keys = pd.MultiIndex.from_frame(disc.loc[is_all, key])
    disc.loc[is_all, "restorative_conferences"] = race_sum.reindex(all_keys).fillna(0).to_numpy()
    counts = ["students_suspended", "students_iss", "students_oss", "students_expelled", "oss_days", "incidents",
              "law_referrals", "restorative_conferences"]
    ceiling = disc[is_all].set_index(key)[counts].reindex(pd.MultiIndex.from_frame(disc[key]))
    capped = np.minimum(disc[counts].to_numpy(dtype=float), ceiling.to_numpy(dtype=float))
    for i, col in enumerate(counts):
        disc[col] = capped[:, i] if col == "oss_days" else capped[:, i].astype(int)
    # A suspended student had an ISS or an OSS: keep that true after the ceilings.
    disc["students_suspended"] = np.minimum(disc["students_suspended"], disc["students_iss"] + disc["students_oss"])
    return disc


_OFFENSES = ("Disruption", "Fighting", "Defiance", "Attendance", "Threat", "Property", "Harassment", "Substances")
_ACTION_P = np.array([0.33, 0.33, 0.015, 0.02, 0.17, 0.135])  # ISS OSS EXP LAW RESTORATIVE OTHER
_ACTIONS = np.array(["ISS", "OSS", "EXP", "LAW_REFERRAL", "RESTORATIVE", "OTHER"])


def _make_incidents(rng, schools, discipline, year_list, seed) -> pd.DataFrame:
    recent = discipline[(discipline["student_group"] == "ALL") & (discipline["school_year"] >= year_list[-1] - 1)]
    n = recent["incidents"].to_numpy().astype(int)
    school_id = np.repeat(recent["school_id"].to_numpy(), n)
    year = np.repeat(recent["school_year"].to_numpy(), n)
    total = len(school_id)
    # School days from 25 August to 15 June with fewer incidents in December and June.
    day = rng.integers(0, 295, total)
    dates = pd.to_datetime(pd.Series(year - 1).astype(str) + "-08-25") + pd.to_timedelta(day, unit="D")
    weekend = dates.dt.day_of_week >= 5
    dates = dates - pd.to_timedelta(np.where(weekend, dates.dt.day_of_week - 4, 0), unit="D")
    start = schools.set_index("school_id")["rp_start_year"].reindex(school_id).to_numpy()
    restorative = year >= start
    p = np.where(restorative[:, None], [0.27, 0.25, 0.01, 0.015, 0.33, 0.125], _ACTION_P)
    p = p / p.sum(axis=1, keepdims=True)
    action = _ACTIONS[(rng.random(total)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    race_p = np.array([0.01, 0.04, 0.42, 0.27, 0.005, 0.18, 0.075])
    race = np.array(_RACES)[rng.choice(7, total, p=race_p / race_p.sum())]
    pool = np.maximum(10, np.repeat(n, n) // 2)
    student = rng.integers(0, pool)
    school_num = pd.Series(school_id).astype("int64").to_numpy()
    keys = (school_num * 1_000_003 + student * 7919 + seed) * 2654435761 % (1 << 40)
    days = np.where(np.isin(action, ["OSS", "EXP"]), np.round(rng.gamma(1.6, 1.6, total), 1),
                    np.where(action == "ISS", 1.0, 0.0))
    return pd.DataFrame(
        {
            "incident_id": [f"I{i:08d}" for i in range(1, total + 1)],
            "school_id": school_id,
            "incident_date": dates.dt.date.to_numpy(),
            "student_key": pd.Series(keys).map("S{:010x}".format).to_numpy(),
            "race": race,
            "farms": rng.random(total) < 0.62,
            "eml": rng.random(total) < 0.14,
            "swd": rng.random(total) < 0.24,
            "gender": np.where(rng.random(total) < 0.7, "MALE", "FEMALE"),
            "offense_category": np.array(_OFFENSES)[rng.integers(0, len(_OFFENSES), total)],
            "action": action,
            "days_removed": days,
        }
    )


_CHANGE_IDEAS = {
    "suspension_rate": (
        "Restorative circles in advisory", "Re-entry conferences after every suspension",
        "Daily check-in/check-out for students with 2+ referrals", "Classroom de-escalation coaching",
        "Peer mediation at lunch",
    ),
    "chronic_absence": ("Attendance buddies for chronically absent students", "Family text nudges on absences"),
}


def _make_cycles(rng, schools, year_list) -> pd.DataFrame:
    rows = []
    rp = schools[schools["rp_start_year"].notna()]
    others = schools[schools["rp_start_year"].isna()].sample(frac=0.1, random_state=int(rng.integers(1 << 31)))
    window_start = pd.Timestamp(f"{year_list[-1] - 2}-09-01")
    for metric, frame, per_school in (("suspension_rate", rp, 3), ("chronic_absence", others, 1)):
        for school_id in frame["school_id"]:
            start = window_start + pd.Timedelta(days=int(rng.integers(0, 120)))
            for k in range(per_school):
                end = start + pd.Timedelta(days=int(rng.integers(42, 90)))
                rows.append({
                    "school_id": school_id, "metric": metric, "start_date": start.date(), "end_date": end.date(),
                    "change_idea": _CHANGE_IDEAS[metric][(k + len(rows)) % len(_CHANGE_IDEAS[metric])],
                    "status": ("adopt", "adapt", "abandon", "running")[int(rng.integers(0, 4))] if k < per_school - 1
                    else "running",
                })
                start = end + pd.Timedelta(days=int(rng.integers(60, 160)))
    cycles = pd.DataFrame(rows, columns=["school_id", "metric", "start_date", "end_date", "change_idea", "status"])
    return cycles.drop_duplicates(["school_id", "metric", "start_date", "change_idea"])


def build_demo(schools: int = 200, years: int = 6, seed: int = 42, rp_effect: float = 1.5,
               end_year: int = 2025, pl_effect: float = 3.0) -> dict[str, pd.DataFrame]:
    """Every table of a demo district, deterministic for a given seed.

    Parameters
    ----------
    schools, years : size of the district and number of school years ending with ``end_year``.
    seed : seed of the ``numpy.random.Generator`` behind every draw.
    rp_effect : percentage points by which restorative-practices schools' expected suspension rate falls
        from their start year on (0 plants no effect).
    pl_effect : percentage points by which professional-learning programmes raise their goal metric at
        participating schools (``analytics.learning.demo``; 0 plants no effect).

    Returns
    -------
    dict of DataFrames keyed ``schools``, ``metrics``, ``discipline``, ``incidents``, ``improvement_cycles``
    and the professional-learning tables, with the columns of ``analytics.data.schema.TABLES``.
    """
    if schools < 1 or years < 1:
        raise ValueError("the demo needs at least one school and one year")
    rng = np.random.default_rng(seed)
    year_list = list(range(end_year - years + 1, end_year + 1))
    school_frame = _make_schools(rng, schools, end_year, years)
    counts = _group_counts(rng, school_frame, year_list)
    enrolled = _long(counts, "enrolled")
    metrics = _make_metrics(rng, school_frame, enrolled[enrolled["enrolled"] > 0], year_list)
    discipline = _make_discipline(rng, school_frame, counts, year_list, rp_effect)
    incidents = _make_incidents(rng, school_frame, discipline, year_list, seed)
    cycles = _make_cycles(rng, school_frame, year_list)
    public_schools = school_frame.drop(columns=["_farms_share", "_cluster_poverty"])
    learning = build_learning(seed, public_schools, metrics, discipline, end_year, pl_effect)
    frames = {
        "schools": public_schools,
        "discipline": discipline,
        "incidents": incidents,
        "improvement_cycles": cycles,
        **learning,  # metrics with climate survey rows, and the PL tables
    }
    from analytics.workspace.demo import build_workspace

    frames.update(build_workspace(frames, seed))  # plans, cycles, walkthroughs, meetings (own random stream)
    return frames


def load_demo(engine, schools: int = 200, years: int = 6, seed: int = 42, rp_effect: float = 1.5,
              pl_effect: float = 3.0, progress=None) -> dict[str, int]:
    """Replace every data table with a freshly built demo district (one transaction); rows per table.

    ``progress(message)``, when given, hears how long building and each large table's write took.
    """
    import time

    from analytics.data.bulk_write import replace_all

    started = time.perf_counter()
    frames = build_demo(schools=schools, years=years, seed=seed, rp_effect=rp_effect, pl_effect=pl_effect)
    if progress:
        progress(f"built {schools:,} schools x {years} years ({counted(sum(len(f) for f in frames.values()), 'row')}) "
                 f"in {time.perf_counter() - started:.1f} s")
    replace_all(engine, frames, progress=progress)
    return {name: len(df) for name, df in frames.items()}
