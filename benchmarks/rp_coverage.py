"""Is the restorative-practices interval honest at every scale, and does it find a planted effect?

DESIGN §8: with no planted effect (`--rp-effect 0`) the 95% interval must exclude 0 in at most 7% of
100 seeds with 1, 3, 10 and 40 RP schools; a planted effect (default 1.5 points) must be found.

Panels are built directly, the way the demo district draws suspensions (analytics.data.demo): school
levels with their base rates, a lognormal school effect, a district-wide multiplicative year
effect, binomial counts on each school's enrolment, RP schools drawn at random with staggered start
years, and the planted effect (p - effect, floored at a quarter of p) from the start year on.
Each scenario runs `rp_impact`'s estimator (`analytics.stats.did.staggered_did`, within school level).
A further null scenario lets middle and high schools adopt RP three times as often as elementary
schools (as when RP goes first where suspensions are highest), run within levels and pooled.

    python benchmarks/rp_coverage.py            # 100 seeds per scenario, 1,999 reassignments, + 1,000 long-run seeds
    python benchmarks/rp_coverage.py --quick    # 20 seeds, 499 reassignments, no long run (a minute or so)

Writes benchmarks/results/rp_coverage.json.

Findings on the earlier excess (10 RP schools of 50: 8 of 100 null seeds excluded 0, bar 7%): sampling
noise, not a departure from the nominal level. RP schools and start years are drawn uniformly here and
the test reassigns them uniformly, so it is exact by construction; the p-value read off the inverted
interval matched the direct count on every seed; over 8,000 further seeds (1001-9000, 199
reassignments, the pooled estimator of the time) the rate was 5.5% (437/8,000, Wilson 95% 5.0-6.0%),
p-values uniform (Kolmogorov-Smirnov p = 0.27 and 0.22 on the two halves); on one fixed panel 300 fresh
assignments rejected in 5.0%. An exact 5% test exceeds 7 of 100 seeds with probability 0.13 per scenario.
What did break exactness is adoption that depends on school level: pooled over levels the null rate
was 14.5% of 200 seeds, within levels 7.0%; hence the estimator now compares within levels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import write_results

from analytics.config import Settings
from analytics.stats.did import staggered_did

YEARS = np.arange(2019, 2025)
STARTS = np.array([2021, 2022, 2023])  # as the demo: the last three years' starts
BASE = {"ES": 0.018, "MS": 0.07, "HS": 0.058}
ENROLMENT = {"ES": (250, 700), "MS": (500, 1100), "HS": (900, 2200)}
# (RP schools, schools in scope): 1 and 3 RP schools in a scope of 25, 10 of 50, 40 of 200 (the demo
# district's 20%), and one RP school in a demo-sized cluster of 8 (reported, not part of the bar).
SCENARIOS = [(1, 25), (3, 25), (10, 50), (40, 200), (1, 8)]
BAR = 0.07


def simulate_panel(seed: int, n_rp: int, n_schools: int, effect: float, by_level: bool = False) -> pd.DataFrame:
    """School x year suspension rates (points) with `n_rp` RP schools and a planted effect in points.

    RP schools are drawn uniformly (`by_level`: middle and high schools three times as likely as
    elementary schools, as when RP goes first where suspensions are highest).
    """
    # Separate streams: which schools adopt RP (and when) is drawn independently of their outcomes.
    rng, adopt = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 3 if by_level else 2])
    levels = rng.choice(["ES", "MS", "HS"], n_schools, p=[0.7, 0.18, 0.12])
    enrolled = np.array([rng.integers(*ENROLMENT[lv]) for lv in levels])
    weight = np.where(levels == "ES", 1.0, 3.0) if by_level else np.ones(n_schools)
    start = np.full(n_schools, np.nan)
    start[adopt.choice(n_schools, n_rp, replace=False, p=weight / weight.sum())] = adopt.choice(STARTS, n_rp)
    school_eff = np.exp(rng.normal(0, 0.35, n_schools))
    year_eff = np.exp(np.cumsum(rng.normal(-0.03, 0.06, len(YEARS))))
    p = np.array([BASE[lv] for lv in levels])[:, None] * school_eff[:, None] * year_eff[None, :]
    treated = YEARS[None, :] >= start[:, None]
    p = np.clip(np.where(treated, np.maximum(p - effect / 100, 0.25 * p), p), 0.002, 0.5)
    suspended = rng.binomial(enrolled[:, None], p)
    return pd.DataFrame({
        "school_id": np.repeat(np.arange(n_schools), len(YEARS)),
        "school_year": np.tile(YEARS, n_schools),
        "suspension_rate": (100 * suspended / enrolled[:, None]).ravel(),
        "rp_start_year": np.repeat(start, len(YEARS)),
        "level": np.repeat(levels, len(YEARS)),
    })


def wilson(k: int, n: int, z: float = 1.959964) -> list[float]:
    """Wilson 95% interval of a share k/n: the sampling noise of a rate measured on n seeds."""
    p, denom = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / denom, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(float(centre - half), 3), round(float(centre + half), 3)]


def run_scenario(n_rp: int, n_schools: int, effect: float, seeds: range, settings: Settings,
                 strata: str | None = "level", by_level: bool = False) -> dict:
    """One scenario over `seeds`, compared within school level as `rp_impact` does (`strata=None`: pooled)."""
    rows = []
    start = time.perf_counter()
    for seed in seeds:
        panel = simulate_panel(seed, n_rp, n_schools, effect, by_level)
        r = staggered_did(panel, "suspension_rate", start_col="rp_start_year", strata_col=strata, settings=settings,
                          event_study=False, seed=10_000 + seed)
        rows.append((r.estimate, r.ci_low, r.ci_high, r.p_value))
    est, low, high, p = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    excludes = (low > 0) | (high < 0)
    found = excludes & (est < 0)
    return {
        "rp_schools": n_rp, "schools": n_schools, "planted_effect_points": effect, "seeds": len(seeds),
        "interval_excludes_zero": round(float(excludes.mean()), 3),
        "excludes_zero_wilson_95": wilson(int(excludes.sum()), len(seeds)),
        "p_at_or_below_0_05": round(float((p <= 0.05).mean()), 3),
        "verdict_disagrees_with_interval": int(((p <= 0.05) != excludes).sum()),
        "found_a_fall": round(float(found.mean()), 3),
        "unbounded_intervals": round(float((~np.isfinite(low) | ~np.isfinite(high)).mean()), 3),
        "mean_estimate": round(float(np.nanmean(est)), 3),
        "median_interval_width": round(float(np.nanmedian(np.where(np.isfinite(high - low), high - low, np.nan))), 3)
        if np.isfinite(high - low).any() else None,
        "seconds": round(time.perf_counter() - start, 2),
    }


def run_adoption_by_level(n_rp: int, n_schools: int, seeds: range, settings: Settings) -> dict:
    """Null rate when middle and high schools adopt RP three times as often, within levels and pooled."""
    return {"adoption": "middle and high schools 3x as likely as elementary schools",
            "within_level": run_scenario(n_rp, n_schools, 0.0, seeds, settings, "level", by_level=True),
            "pooled": run_scenario(n_rp, n_schools, 0.0, seeds, settings, None, by_level=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--rp-effect", type=float, default=1.5, help="planted effect in points (power runs)")
    parser.add_argument("--permutations", type=int, default=1999)
    parser.add_argument("--quick", action="store_true", help="20 seeds and 499 reassignments")
    parser.add_argument("--long-run", type=int, default=1000,
                        help="also run this many null seeds (from 1001) at 10 RP schools of 50 to show the long-run rate "
                             "behind the 100-seed figure (0 = skip; skipped with --quick)")
    args = parser.parse_args()
    seeds = range(1, 21) if args.quick else range(1, args.seeds + 1)
    settings = Settings(permutations=499 if args.quick else args.permutations)
    null = [run_scenario(k, n, 0.0, seeds, settings) for k, n in SCENARIOS]
    planted = [run_scenario(k, n, args.rp_effect, seeds, settings) for k, n in SCENARIOS]
    in_bar = [r for r in null if (r["rp_schools"], r["schools"]) != (1, 8)]
    by_level = run_adoption_by_level(40, 200, seeds, settings)
    long_run = [] if args.quick or not args.long_run else [
        run_scenario(10, 50, 0.0, range(1001, 1001 + args.long_run), settings)]
    write_results("rp_coverage", {
        "method": "Callaway-Sant'Anna DiD within school level; randomization inference (start years reassigned within "
                  "level), CI by test inversion",
        "quick": args.quick, "permutations": settings.permutations,
        "null": null, "planted": planted, "null_adoption_by_level": by_level, "null_long_run": long_run,
        "goal": f"null: interval excludes 0 in <= {BAR:.0%} of seeds at 1, 3, 10 and 40 RP schools; "
                "planted effect found (power reported)",
        "goal_met": all(r["interval_excludes_zero"] <= BAR for r in in_bar + [by_level["within_level"]])
        and all(r["verdict_disagrees_with_interval"] == 0 for r in null + planted),
    })


if __name__ == "__main__":
    main()
