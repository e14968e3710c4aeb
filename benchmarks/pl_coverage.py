"""Is the professional-learning level-5 interval honest, and does it find a planted effect?

The demo district is built over many seeds (`analytics.data.demo.build_demo`, whose PL generator is
`analytics.learning.demo`): with `--pl-effect 0` nothing is planted, so the level-5 interval should
exclude 0 in at most 7% of seeds (DESIGN §8's bar for the RP estimator, which level 5 uses); with a
planted effect (default 3 points on each programme's main goal metric, scaled by each school's
fidelity with mean 1) it should be found and its interval should cover the planted value. Each seed
runs level 5 exactly as `/learning` and `export learning` do (`analytics.learning.outcomes`).

    python benchmarks/pl_coverage.py            # 100 seeds, 120 schools, 999 reassignments
    python benchmarks/pl_coverage.py --quick    # 20 seeds, 80 schools, 499 reassignments

Writes benchmarks/results/pl_coverage.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_results

from analytics.config import Settings
from analytics.data.demo import build_demo
from analytics.learning import outcomes

PROGRAMMES = {"MATH-TALK": "math_proficient", "RP": "climate_relationships"}
BAR = 0.07


def level5(frames: dict, program: str, metric: str, settings: Settings) -> dict:
    """The overall level-5 estimate of one programme on one demo district."""
    sessions = frames["pl_sessions"][frames["pl_sessions"]["program"] == program]
    starts = outcomes.participation_starts(sessions)
    panel = outcomes.like_for_like(outcomes.metric_panel(frames["metrics"], frames["discipline"], metric), starts,
                                   frames["schools"])
    result = outcomes.did(panel, starts, metric, settings, event_study=False)
    return {"estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high, "p": result.p_value,
            "n": result.n_treated}


def run(seeds: int, schools: int, effect: float, permutations: int, first_seed: int = 1000) -> dict:
    settings = Settings(permutations=permutations)
    draws: dict[str, list[dict]] = {p: [] for p in PROGRAMMES}
    for seed in range(seeds):
        frames = build_demo(schools=schools, years=6, seed=first_seed + seed, pl_effect=effect)
        for program, metric in PROGRAMMES.items():
            draws[program].append(level5(frames, program, metric, settings))
    summary = {}
    for program, rows in draws.items():
        est = np.array([r["estimate"] for r in rows])
        low, high = np.array([r["ci_low"] for r in rows]), np.array([r["ci_high"] for r in rows])
        summary[program] = {
            "goal_metric": PROGRAMMES[program],
            "participating_schools_median": float(np.median([r["n"] for r in rows])),
            "interval_excludes_zero": float(np.mean((low > 0) | (high < 0))),
            "interval_covers_planted": float(np.mean((low <= effect) & (effect <= high))),
            "mean_estimate": float(np.nanmean(est)),
            "p_at_most_0_05": float(np.mean(np.array([r["p"] for r in rows]) <= 0.05)),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pl-effect", type=float, default=3.0, help="planted effect in points (besides 0)")
    parser.add_argument("--program", choices=list(PROGRAMMES), help="one programme only")
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds run from here (default 1000)")
    parser.add_argument("--null-only", action="store_true", help="skip the planted-effect runs")
    args = parser.parse_args()
    seeds, schools, permutations = (20, 80, 499) if args.quick else (100, 120, 999)
    if args.program:
        for name in [p for p in PROGRAMMES if p != args.program]:
            del PROGRAMMES[name]
    started = time.perf_counter()
    null = run(seeds, schools, 0.0, permutations, args.first_seed)
    planted = {} if args.null_only else run(seeds, schools, args.pl_effect, permutations, args.first_seed)
    passed = all(v["interval_excludes_zero"] <= BAR for v in null.values()) and all(
        v["interval_excludes_zero"] >= 0.8 for v in planted.values())
    write_results("pl_coverage", {
        "quick": args.quick, "seeds": seeds, "first_seed": args.first_seed, "schools": schools, "permutations": permutations,
        "bar": f"null: interval excludes 0 in <= {BAR:.0%} of seeds; planted {args.pl_effect} points found in "
               ">= 80% of seeds",
        "null": null, "planted": {"effect_points": args.pl_effect, **planted}, "passed": passed,
        "seconds": round(time.perf_counter() - started, 1),
    })


if __name__ == "__main__":
    main()
