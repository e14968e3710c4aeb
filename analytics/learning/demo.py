"""Professional-learning data for the demo district (DESIGN §10), with a planted, known effect.

Two programmes: restorative practices (RP, at the schools with an ``rp_start_year``) and an
instructional programme, "Math talk", at a random quarter of the elementary and middle schools from
staggered start years (chosen at random, so with no planted effect participants and the rest share
the same trends). Each participating school has a latent implementation fidelity; from its start year
its goal metric rises by ``pl_effect`` percentage points times its fidelity relative to the programme's
mean (so the average planted effect is ``pl_effect`` and it grows with fidelity: dose-response). For RP
the goal metric is the climate survey (% favourable); for Math talk it is math proficiency.
Implementation (level 4) is observed on monthly walkthroughs whose look-fors are tagged with the
programme's practices, as specialists record them on /plans; the `implementation` table is left empty
(still importable), so level 4 on the demo comes from the walkthroughs.

The generator has its own random stream (seeded from the district's seed), so adding it leaves every
other demo table as it was.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from analytics.data.catalog import RACE_GROUPS

CLIMATE = ("climate_belonging", "climate_safety", "climate_relationships")
_CLIMATE_BASE = {"ES": 0.74, "MS": 0.62, "HS": 0.57}
_CLIMATE_SHIFT = {"climate_belonging": 0.0, "climate_safety": 0.05, "climate_relationships": -0.03}
_GROUP_SHIFT = {"ALL": 0.0, "AM": -0.04, "AS": 0.03, "BL": -0.06, "HI": -0.03, "PI": -0.02, "WH": 0.04, "MU": -0.02,
                "FARMS": -0.05, "EML": 0.0, "SWD": -0.07, "FEMALE": 0.01, "MALE": -0.01}
_RACES = tuple(RACE_GROUPS)

PROGRAMS = pd.DataFrame([
    {"program": "RP", "program_name": "Restorative practices",
     "description": "Circles, affective statements and restorative conferences in place of exclusion; "
                    "coached by school-based PL instructional specialists.",
     "goal_metrics": "climate_relationships;suspension_rate;climate_belonging;climate_safety;chronic_absence"},
    {"program": "MATH-TALK", "program_name": "Math talk",
     "description": "Number talks and student explanation of reasoning in grades K-8 math.",
     "goal_metrics": "math_proficient;math_growth"},
])
_PRACTICES = {"RP": ("Restorative circles", "Affective statements"),
              "MATH-TALK": ("Number talks", "Students explain their reasoning")}
# How a walkthrough look-for words each practice (the tag maps it to the programme's practice).
_LOOK_FORS = {"Restorative circles": "Community circle held or under way",
              "Affective statements": "Affective statements used during redirection",
              "Number talks": "Number talk under way", "Students explain their reasoning":
              "Students explain their reasoning to a partner"}
_VISITORS = {"RP": "PL instructional specialist (restorative practices)", "MATH-TALK": "Mathematics coach"}
_ITEMS = ("The session was a good use of my time", "I can apply this in my work next week",
          "The facilitator was well prepared")
_ITEM_P = (np.array([0.04, 0.08, 0.16, 0.45, 0.27]), np.array([0.06, 0.12, 0.22, 0.40, 0.20]),
           np.array([0.02, 0.04, 0.10, 0.44, 0.40]))
_SUPPORTS = ("Protected time for coaching", "Principal attends sessions", "Materials provided",
             "Collaborative planning time for the practice", "Follow-up coaching visits")


def _participants(rng: np.random.Generator, schools: pd.DataFrame, end_year: int) -> dict[str, pd.Series]:
    """Start year per participating school, per programme."""
    rp = schools.set_index("school_id")["rp_start_year"].dropna().astype(int)
    eligible = schools[schools["level"].isin(["ES", "MS"])]["school_id"].to_numpy()
    chosen = rng.choice(eligible, size=max(2, round(0.25 * len(eligible))), replace=False) if len(eligible) >= 2 \
        else eligible
    starts = rng.choice([end_year - 2, end_year - 1], size=len(chosen))
    return {"RP": rp, "MATH-TALK": pd.Series(starts, index=chosen).sort_index()}


def _sessions(rng, program: str, starts: pd.Series, enrollment: pd.Series, end_year: int) -> pd.DataFrame:
    rows = []
    for school_id, start in starts.items():
        for year in range(int(start), end_year + 1):
            for k, (month, day) in enumerate(((9, 12), (11, 14), (2, 6))):
                date = pd.Timestamp(year - (1 if month >= 7 else 0), month, day)
                rows.append({"program": program, "session_id": f"{program}-{school_id}-{year}-{k + 1}",
                             "session_date": date.date(), "school_id": school_id,
                             "participants": int(max(4, rng.poisson(enrollment[school_id] / 22))),
                             "hours": float(rng.choice([1.5, 2.0, 3.0]))})
    return pd.DataFrame(rows)


def _feedback(rng, sessions: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for item, p in zip(_ITEMS, _ITEM_P, strict=True):
        counts = rng.multinomial(sessions["participants"].to_numpy(), p)
        for k in range(5):
            frames.append(pd.DataFrame({"program": sessions["program"].to_numpy(),
                                        "session_id": sessions["session_id"].to_numpy(), "item": item,
                                        "response": k + 1, "count": counts[:, k]}))
    out = pd.concat(frames, ignore_index=True)
    return out[out["count"] > 0].reset_index(drop=True)


def _assessments(rng, program: str, starts: pd.Series, gain: float) -> pd.DataFrame:
    n = min(240, 8 * len(starts))
    school = rng.choice(starts.index.to_numpy(), size=n)
    pre = np.clip(rng.normal(58, 12, n), 0, 100)
    post = np.clip(pre + rng.normal(gain, 8, n), 0, 100)
    missing_post = rng.random(n) < 0.08  # some participants miss the post-assessment
    return pd.DataFrame({"program": program, "participant_key": [f"{program}-P{i:04d}" for i in range(1, n + 1)],
                         "school_id": school, "pre_score": pre.round(1),
                         "post_score": np.where(missing_post, np.nan, post.round(1))})


def _support(rng, program: str, starts: pd.Series, fidelity: pd.Series, end_year: int) -> pd.DataFrame:
    rows = []
    for school_id, start in starts.items():
        for year in range(int(start), end_year + 1):
            for item in _SUPPORTS:
                p = float(np.clip(0.3 + 0.8 * fidelity[school_id], 0.05, 0.97))
                if program == "RP":
                    value = "Y" if rng.random() < p else "N"
                else:
                    value = str(int(np.clip(round(1 + 4 * p + rng.normal(0, 0.8)), 1, 5)))
                rows.append({"program": program, "school_id": school_id, "school_year": year, "item": item,
                             "in_place": value})
    return pd.DataFrame(rows)


def _implementation(rng, program: str, starts: pd.Series, fidelity: pd.Series, end_year: int) -> pd.DataFrame:
    rows = []
    for school_id, start in starts.items():
        months = pd.date_range(f"{int(start) - 1}-10-01", f"{end_year}-05-31", freq="MS")
        months = months[~months.month.isin([6, 7, 8, 9])]
        for i, month in enumerate(months):
            ramp = min(1.0, 0.55 + 0.05 * i)  # practice takes hold over the first year
            for j, practice in enumerate(_PRACTICES[program]):
                observed = int(rng.integers(6, 13))
                day = month + pd.Timedelta(days=int(rng.integers(2, 24)) + j)
                using = int(rng.binomial(observed, float(np.clip(fidelity[school_id] * ramp, 0, 1))))
                rows.append({"program": program, "school_id": school_id, "observed_on": day.date(),
                             "practice": practice, "classrooms_observed": observed, "classrooms_using": using})
    return pd.DataFrame(rows)


def practice_walkthroughs(observations: pd.DataFrame, programs: pd.DataFrame) -> pd.DataFrame:
    """The demo's level-4 evidence as walkthroughs: one visit per school, programme and month, its look-fors
    tagged with the practices they observe (the visit takes the month's first observation date).

    Every fifth visit of a school is not marked shareable, so shared views count fewer walkthroughs.
    Built column-wise from the observations sorted by visit (a state-sized district has ~100,000 visits; a
    loop over them took minutes).
    """
    columns = ["visit_id", "school_id", "visit_date", "visitor", "focus", "look_fors", "practices", "notes",
               "next_steps", "shareable"]
    if observations.empty:
        return pd.DataFrame(columns=columns)
    names = dict(zip(programs["program"], programs["program_name"], strict=True))
    keys = ["program", "school_id", "month"]
    observed_on = pd.to_datetime(observations["observed_on"])
    work = observations.assign(observed_on=observed_on, month=observed_on.dt.to_period("M"))
    work = work.sort_values(keys, kind="stable", ignore_index=True)  # a visit's rows keep their order
    first = work[keys].ne(work[keys].shift()).any(axis=1).to_numpy()
    bounds = [*np.flatnonzero(first).tolist(), len(work)]
    look = [f"{_LOOK_FORS[p]}: {int(k)}/{int(n)}" for p, k, n in
            zip(work["practice"], work["classrooms_using"], work["classrooms_observed"], strict=True)]
    tag = [f"{_LOOK_FORS[p]} = {program}: {p}" for program, p in zip(work["program"], work["practice"], strict=True)]
    visits = work.loc[first, ["program", "school_id"]].reset_index(drop=True)
    day = work.groupby(np.cumsum(first))["observed_on"].min().reset_index(drop=True)
    shown = visits.groupby(["program", "school_id"]).cumcount() % 5 != 4
    return pd.DataFrame({
        "visit_id": "W-" + visits["school_id"] + "-" + visits["program"] + "-" + day.dt.strftime("%Y%m%d"),
        "school_id": visits["school_id"], "visit_date": day.dt.date,
        "visitor": visits["program"].map(_VISITORS).fillna("PL instructional specialist"),
        "focus": visits["program"].map(names),
        "look_fors": ["; ".join(look[a:b]) for a, b in pairwise(bounds)],
        "practices": ["; ".join(tag[a:b]) for a, b in pairwise(bounds)],
        "notes": "Routines looked the same from room to room; the practice was strongest where it opened the lesson.",
        "next_steps": "Share one short routine at the next PLC and revisit next month.",
        "shareable": shown.to_numpy(),
    }, columns=columns)


def _dose(starts: pd.Series, fidelity: pd.Series) -> pd.Series:
    """Planted effect multiplier per participating school: fidelity relative to the programme mean."""
    f = fidelity.reindex(starts.index)
    return f / f.mean()


def _climate(rng, schools: pd.DataFrame, discipline: pd.DataFrame, starts: pd.Series, dose: pd.Series,
             pl_effect: float) -> pd.DataFrame:
    """Climate survey results (% favourable) per school x year x group; race rows add up to ALL."""
    base = discipline[["school_id", "school_year", "student_group", "enrolled"]]
    level = base["school_id"].map(schools.set_index("school_id")["level"]).map(_CLIMATE_BASE).fillna(0.6)
    school_eff = pd.Series(rng.normal(0, 0.05, len(schools)), index=schools["school_id"])
    start = base["school_id"].map(starts)
    lift = np.where(base["school_year"] >= start, pl_effect / 100 * base["school_id"].map(dose).fillna(0), 0.0)
    frames = []
    for metric in CLIMATE:
        p = (level + _CLIMATE_SHIFT[metric] + base["student_group"].map(_GROUP_SHIFT).fillna(0)
             + base["school_id"].map(school_eff) + rng.normal(0, 0.02, len(base)) + lift).clip(0.02, 0.98)
        respondents = rng.binomial(base["enrolled"].to_numpy().astype(int), 0.55)
        favourable = rng.binomial(respondents, p.to_numpy())
        frames.append(base[["school_id", "school_year", "student_group"]].assign(
            metric=metric, numerator=favourable, denominator=respondents))
    rows = pd.concat(frames, ignore_index=True)
    return _all_from_races(rows[rows["denominator"] > 0])


def _all_from_races(rows: pd.DataFrame) -> pd.DataFrame:
    keys = ["school_id", "school_year", "metric"]
    sums = rows[rows["student_group"].isin(_RACES)].groupby(keys)[["numerator", "denominator"]].sum()
    is_all = rows["student_group"] == "ALL"
    rows = rows.copy()
    rows.loc[is_all, ["numerator", "denominator"]] = rows.loc[is_all, keys].join(sums, on=keys)[
        ["numerator", "denominator"]].to_numpy()
    rows["value"] = (100.0 * rows["numerator"] / rows["denominator"]).round(4)
    return rows


def _lift_metric(metrics: pd.DataFrame, metric: str, starts: pd.Series, dose: pd.Series,
                 pl_effect: float) -> pd.DataFrame:
    """Move `metric`'s numerators up by the planted effect at participating schools from their start year."""
    rows = metrics.copy()
    start = rows["school_id"].map(starts)
    hit = (rows["metric"] == metric) & (rows["school_year"] >= start)
    if not hit.any() or pl_effect == 0:
        return rows
    shift = np.round(rows.loc[hit, "denominator"] * pl_effect / 100 * rows.loc[hit, "school_id"].map(dose))
    rows.loc[hit, "numerator"] = np.clip(rows.loc[hit, "numerator"] + shift, 0, rows.loc[hit, "denominator"])
    fixed = _all_from_races(rows[rows["metric"] == metric][["school_id", "school_year", "metric", "student_group",
                                                            "numerator", "denominator"]])
    rows.loc[rows["metric"] == metric, ["numerator", "denominator", "value"]] = fixed[
        ["numerator", "denominator", "value"]].to_numpy()
    return rows


def build_learning(seed: int, schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                   end_year: int, pl_effect: float = 3.0) -> dict[str, pd.DataFrame]:
    """The six PL tables plus ``metrics`` with climate rows and the planted Math-talk effect, and the
    programmes' walkthroughs: implementation is observed on walkthroughs whose look-fors are tagged with
    the practices (``practice_walkthroughs``), so ``implementation`` itself is returned empty.

    ``pl_effect``: percentage points added, on average, to each programme's main goal metric at its
    participating schools from their start year (0 plants none), scaled by each school's fidelity.
    """
    rng = np.random.default_rng([seed, 10])
    starts = _participants(rng, schools, end_year)
    enrollment = schools.set_index("school_id")["enrollment"].astype(float)
    fidelity = {p: pd.Series(rng.beta(5, 3, len(s)), index=s.index) for p, s in starts.items()}
    sessions, feedback, assessments, support, implementation = [], [], [], [], []
    for program, program_starts in starts.items():
        if program_starts.empty:
            continue
        program_sessions = _sessions(rng, program, program_starts, enrollment, end_year)
        sessions.append(program_sessions)
        feedback.append(_feedback(rng, program_sessions))
        assessments.append(_assessments(rng, program, program_starts, gain=4.5 if program == "RP" else 6.0))
        support.append(_support(rng, program, program_starts, fidelity[program], end_year))
        implementation.append(_implementation(rng, program, program_starts, fidelity[program], end_year))
    climate = _climate(rng, schools, discipline, starts["RP"], _dose(starts["RP"], fidelity["RP"]), pl_effect)
    with_climate = pd.concat([metrics, climate[metrics.columns.drop("target")]], ignore_index=True)
    lifted = _lift_metric(with_climate, "math_proficient", starts["MATH-TALK"],
                          _dose(starts["MATH-TALK"], fidelity["MATH-TALK"]), pl_effect)
    programs = PROGRAMS.assign(start_year=[int(s.min()) if len(s) else None for s in starts.values()])

    def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    observations = concat(implementation)
    return {"metrics": lifted, "pl_programs": programs, "pl_sessions": concat(sessions),
            "pl_feedback": concat(feedback), "pl_assessments": concat(assessments), "pl_support": concat(support),
            "implementation": observations.iloc[0:0],  # level 4 comes from the walkthroughs; the table stays empty
            "walkthroughs": practice_walkthroughs(observations, programs)}
