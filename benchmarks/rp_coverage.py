"""Does the restorative-practices estimator find a planted effect and cover zero when there is none?

On the demo district: with `rp_effect=1.5` the 95% interval must exclude 0; with `rp_effect=0` it
must cover 0 in at least 18 of 20 seeds. Writes benchmarks/results/rp_coverage.json.
"""

from __future__ import annotations

import time

from _common import write_results

from analytics.data.demo import build_demo
from analytics.stats.rp_impact import rp_impact

SEEDS = range(1, 21)


def run(seed: int, effect: float) -> dict:
    frames = build_demo(seed=seed, rp_effect=effect)
    start = time.perf_counter()
    result = rp_impact(frames["schools"], frames["discipline"], outcomes=["suspension_rate"])
    row = result.summary.iloc[0]
    return {"seed": seed, "estimate": round(row["estimate"], 4), "ci_low": round(row["ci_low"], 4),
            "ci_high": round(row["ci_high"], 4), "p_value": round(row["p_value"], 4),
            "covers_zero": bool(row["ci_low"] <= 0 <= row["ci_high"]), "seconds": round(time.perf_counter() - start, 3)}


def main() -> None:
    planted = run(42, 1.5)
    null = [run(seed, 0.0) for seed in SEEDS]
    covered = sum(r["covers_zero"] for r in null)
    write_results("rp_coverage", {
        "planted_effect_1_5": planted,
        "planted_interval_excludes_zero": not planted["covers_zero"],
        "null_runs": null,
        "null_coverage": f"{covered} of {len(null)}",
        "goal": "planted interval excludes 0; null interval covers 0 in >= 18 of 20 seeds",
        "goal_met": (not planted["covers_zero"]) and covered >= 18,
    })


if __name__ == "__main__":
    main()
