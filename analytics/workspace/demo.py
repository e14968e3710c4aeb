"""Workspace records of the demo district: goals (some on track, some off), root causes, PDSA ramps with
weekly measures, walkthroughs and meeting dates, so /plans, /cycles and /changes are full on first run.

Deterministic for a seed, with its own random stream so the other demo tables are unchanged by it.
Built from the demo's schools and metrics (baselines are the schools' real demo values).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from analytics.data.derived import metrics_with_suspension
from analytics.data.schema import TABLES

GOAL_PLANS = (  # metric, group, change in points over four years, strategy, priority
    ("read_proficient", "ALL", 8.0, "Daily small-group guided reading with weekly progress checks",
     "Literacy for every student"),
    ("math_proficient", "FARMS", 7.0, "Number talks and spaced retrieval practice in every math block",
     "Closing opportunity gaps"),
    ("suspension_rate", "BL", -2.0, "Restorative circles and a re-entry conference after every removal",
     "Safe and inclusive schools"),
    ("chronic_absence", "ALL", -5.0, "Attendance team: first-day calls home and mentoring for students at risk",
     "Every student present and engaged"),
)
CAUSES = (
    ("process", "Small-group time is often cut when the schedule changes",
     "Groups are skipped on assembly days\nThe block has no protected time\nThe master schedule was built first"),
    ("people", "New teachers have not had training in the reading routine",
     "Four of nine teachers joined this year\nSummer training was optional"),
    ("materials", "Decodable texts run out in the upper grades", ""),
    ("policy", "Removal is the default response in the code of conduct", "The code was last revised in 2016"),
    ("measurement", "Attendance is recorded late in the day, so first-period absences go unnoticed", ""),
    ("environment", "Hallway transitions are crowded and unsupervised", "Two staircases serve 900 students"),
)
RAMPS = (  # measure, higher is better, level, change ideas of the linked cycles
    ("office referrals per week", False, 14.0,
     ("Greet students at the door in grade 6", "Door greetings in every grade 6-8 class",
      "Door greetings plus a 2-minute check-in circle")),
    ("students reached by first-day attendance calls (%)", True, 55.0,
     ("Call home by 10 a.m. on the first absence", "Text and call in the family's home language",
      "Add a mentor check-in on return")),
    ("exit tickets at or above standard (%)", True, 48.0,
     ("Post and review the learning target each lesson", "Target plus a success-criteria checklist")),
)
LOOK_FORS = ("Learning target posted and referred to", "Students talking with a partner about the task",
             "Restorative language used during redirection", "Student work displayed with feedback",
             "Small-group instruction under way")
MEETING_DATES = (date(2024, 5, 30), date(2024, 9, 26), date(2024, 11, 21), date(2025, 2, 27))


def build_workspace(frames: dict[str, pd.DataFrame], seed: int = 42) -> dict[str, pd.DataFrame]:
    """Workspace tables for a demo district (`frames` from `analytics.data.demo.build_demo`)."""
    rng = np.random.default_rng([seed, 9])
    schools = frames["schools"]
    metrics = metrics_with_suspension(frames["metrics"], frames["discipline"])
    end_year = int(metrics["school_year"].max())
    goals = _goals(rng, schools, metrics, end_year)
    cycles, measures = _cycles(rng, schools, goals, end_year)
    return {
        "school_goals": goals,
        "root_causes": _causes(rng, goals),
        "pdsa_cycles": cycles,
        "cycle_measures": measures,
        "walkthroughs": pd.concat([_walkthroughs(rng, schools, end_year),  # and the PL programmes' tagged visits
                                   frames.get("walkthroughs", _frame("walkthroughs", []))], ignore_index=True),
        "meetings": _meetings(schools),
    }


def _goals(rng, schools: pd.DataFrame, metrics: pd.DataFrame, end_year: int) -> pd.DataFrame:
    base_year = max(end_year - 3, int(metrics["school_year"].min()))
    values = metrics.set_index(["school_id", "metric", "student_group", "school_year"])["value"]
    rows = []
    for school_id in schools["school_id"]:
        if rng.random() < 0.35:
            continue
        for metric, group, delta, strategy, priority in [GOAL_PLANS[i] for i in rng.choice(4, 2, replace=False)]:
            baseline = values.get((school_id, metric, group, base_year))
            if baseline is None or not np.isfinite(baseline):
                continue
            target = float(np.clip(baseline + delta * rng.uniform(0.7, 1.4), 0.0, 100.0))
            if (delta > 0 and target <= baseline) or (delta < 0 and target >= baseline):
                continue
            interim = f"{base_year + 2}: {baseline + (target - baseline) * 0.4:.1f}" if rng.random() < 0.25 else None
            rows.append({
                "goal_id": f"G-{school_id}-{metric.split('_')[0][:4].upper()}-{group}", "school_id": school_id,
                "metric": metric, "student_group": group, "baseline_year": base_year,
                "baseline_value": round(float(baseline), 1), "target_year": end_year + 1,
                "target_value": round(target, 1),
                "status": rng.choice(["active", "active", "active", "active", "draft", "retired"]),
                "interim_targets": interim, "strategy": strategy,
                "owner": rng.choice(["School leadership team", "Instructional leadership team", "Student support team"]),
                "priority": priority,
            })
    return _frame("school_goals", rows).drop_duplicates("goal_id", ignore_index=True)


def _causes(rng, goals: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for goal_id in goals["goal_id"]:
        for k in rng.choice(len(CAUSES), int(rng.integers(0, 3)), replace=False):
            category, statement, whys = CAUSES[k]
            rows.append({"cause_id": f"RC-{goal_id[2:]}-{k}", "goal_id": goal_id, "category": category,
                         "statement": statement, "whys": whys or None})
    return _frame("root_causes", rows)


def _cycles(rng, schools: pd.DataFrame, goals: pd.DataFrame, end_year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    first_monday = date(end_year - 1, 9, 9)
    first_monday -= timedelta(days=first_monday.weekday())
    chosen = schools["school_id"].sample(frac=0.15, random_state=int(rng.integers(1 << 31))).tolist()
    goal_of = goals[goals["status"] == "active"].groupby("school_id")["goal_id"].first().to_dict()
    cycles, measures = [], []
    for school_id in chosen:
        measure, higher, level, ideas = RAMPS[int(rng.integers(0, len(RAMPS)))]
        improves = rng.random() < 0.6
        start, previous = first_monday + timedelta(weeks=int(rng.integers(0, 3))), None
        for k, idea in enumerate(ideas):
            weeks = int(rng.integers(5, 8))
            end = start + timedelta(weeks=weeks, days=-3)
            cycle_id = f"C-{school_id}-{k + 1}"
            last = k == len(ideas) - 1
            decision = None if last else ("adapt" if improves else rng.choice(["adapt", "abandon"]))
            cycles.append({
                "cycle_id": cycle_id, "school_id": school_id, "change_idea": idea, "start_date": start,
                "end_date": None if last else end, "goal_id": goal_of.get(school_id), "previous_cycle_id": previous,
                "question": f"Will '{idea.lower()}' change {measure}?",
                "prediction": f"{measure.capitalize()} will {'rise' if higher else 'fall'} within {weeks} weeks",
                "plan_who": "Grade-level team", "plan_what": idea, "plan_where": "Two classrooms first",
                "plan_when": f"{weeks} weeks from {start:%d %b %Y}", "measure": measure,
                "do_notes": None if last else "Ran as planned on most days; two days lost to testing",
                "study_result": None if last else ("Moved in the predicted direction" if improves
                                                   else "No clear change against the prediction"),
                "decision": decision,
                "learning": None if last else ("Works when the whole team does it the same way" if improves
                                               else "Too hard to keep up on busy days; simplify"),
            })
            for w in range(weeks):
                step = (k * weeks + w) * (0.9 if improves else 0.0)
                trend = step if higher else -step * level / 60
                value = max(0.0, level + trend + rng.normal(0, level * 0.08))
                measures.append({"cycle_id": cycle_id, "date": start + timedelta(weeks=w),
                                 "value": round(min(value, 100.0) if higher else value, 1), "note": None})
            previous = cycle_id
            start = end + timedelta(days=10)
    return _frame("pdsa_cycles", cycles), _frame("cycle_measures", measures)


def _walkthroughs(rng, schools: pd.DataFrame, end_year: int) -> pd.DataFrame:
    rows = []
    for school_id in schools["school_id"].sample(frac=0.3, random_state=int(rng.integers(1 << 31))):
        for v in range(int(rng.integers(1, 4))):
            n = int(rng.integers(5, 11))
            items = rng.choice(len(LOOK_FORS), 3, replace=False)
            look = "; ".join(f"{LOOK_FORS[i]}: {int(rng.integers(1, n + 1))}/{n}" for i in items)
            rows.append({
                "visit_id": f"W-{school_id}-{v + 1}", "school_id": school_id,
                "visit_date": date(end_year - 1, 10, 1) + timedelta(days=int(rng.integers(0, 200))),
                "visitor": rng.choice(["Systemic-improvement specialist", "Director of school support",
                                       "Instructional specialist"]),
                "focus": LOOK_FORS[items[0]], "look_fors": look,
                "notes": "Routines were consistent in most rooms; partner talk was strongest in the upper grades.",
                "next_steps": "Grade teams share one routine at the next PLC; revisit in six weeks.",
                "shareable": bool(rng.random() < 0.5),
            })
    return _frame("walkthroughs", rows)


def _meetings(schools: pd.DataFrame) -> pd.DataFrame:
    scopes = ["district", *sorted(schools["cluster"].unique())]
    return _frame("meetings", [{"scope": s, "meeting_date": d, "note": "Quarterly data meeting"}
                               for s in scopes for d in MEETING_DATES])


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    """Rows in the import columns of `table` (an empty frame still has them)."""
    return pd.DataFrame(rows, columns=TABLES[table].column_names)
