"""What to compute ahead when new data lands, so the first views after an import are warm (DESIGN §8).

After an import every cached view belongs to an old data version. The server then prepares the expensive
district-wide results in a background thread, in the order people are likely to need them: the privacy
release every shared link needs, the district rows of the metrics the pages open with, the district's growth
gaps, every school's values for the latest year, every plan goal's progress and the district's list of what
changed since its last meeting (a data meeting starts from it), the discipline tables and the
restorative-practices estimates (randomization inference), the data page's quality counts (and its import
history, row counts and audit log: what an editor's first view of it reads). Then the other
opening views themselves: each page that opens on the same
district-wide view for everyone (no URL parameters) is drawn once with nobody watching, so its charts,
tables and Arrow bytes are made under the very cache keys the page asks for, and the first person to open
it only reads them (DESIGN §8: a first view within 5x its warm rerun). This module only says *what* to
prepare, from the data present; `pages/ui/prepare.py` runs the list against the app's caches. Last, in the
background, every school's profile for the latest year and what its first view reads besides (a school's first view
slices them) and each cluster's
restorative-practices estimates: a cluster's discipline view is otherwise tens to hundreds of times its
rerun on first view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The metric each page opens with when the URL names none (overview and cluster; growth gaps).
OPENING_METRICS = ("read_proficient", "math_growth")


@dataclass(frozen=True)
class Step:
    """One result to prepare: `kind` says which cache fills it, `arg` its argument, `label` what people read."""

    kind: str
    label: str
    arg: str | int | None = None
    # Warms caches that only views of one cluster or school read: runs after every other step, with no
    # progress shown and no rerun of open pages when it ends (the district's own views are ready by then).
    background: bool = False


# Pages whose opening view (no URL parameters) is the same for every member of staff and costs more than
# its rerun. Pages that open on one cluster, school, plan or cycle have no single opening view. What changed
# opens on the district since its last meeting, which the data version covers (recording a meeting bumps it);
# the data page is for editors and draws no analysis (its counts, history and audit log are a step of their own).
OPENING_VIEWS = {"overview": "district overview", "gaps": "growth gaps", "discipline": "discipline",
                 "learning": "professional learning", "meeting": "data-meeting pack",
                 "changes": "what changed since the last meeting"}
# Drawn right after the district figures and every goal's progress it slices, before the discipline tables:
# the list a data meeting starts from costs about a tenth of the discipline step at 10,000 schools (its colours
# and counts are made in SQL), so it need not wait for every other district result.
EARLY_VIEWS = ("changes",)


def opening_metrics(metric_ids: Sequence[str]) -> list[str]:
    """The metrics the pages open with, among those present (the first metric when none of them is)."""
    present = [m for m in OPENING_METRICS if m in metric_ids]
    return present or list(metric_ids[:1])


def gaps_opening_metric(metric_ids: Sequence[str]) -> str | None:
    """The metric the growth-gaps page opens with: math growth when present, else the first metric."""
    return OPENING_METRICS[1] if OPENING_METRICS[1] in metric_ids else (metric_ids[0] if metric_ids else None)


def work_list(metric_ids: Sequence[str], years: Sequence[int], *, has_discipline: bool,
              has_live_shares: bool = True, has_learning: bool = False, has_goals: bool = False) -> list[Step]:
    """The district-wide results to prepare for one data version, most widely needed first, then the
    opening views drawn from them (:data:`OPENING_VIEWS`, those whose data is present), then in the
    background every school's profile and opening view for the latest year (100 schools per piece, ``PROFILE_BLOCK``: a
    school's first view slices it) and what any one cluster's discipline view needs (each cluster's restorative-practices
    estimates, randomization inference of a fraction of a second to seconds each: last, one piece per
    cluster).

    Every goal's progress (one pass; a school's plan and what changed slice it) and the programme practices
    a plan's walkthrough form offers come after the district figures when the district has goals, then the
    opening view of what changed (:data:`EARLY_VIEWS`), ahead of the discipline tables.

    Empty when there is nothing to show yet (no metrics and no discipline rows). The privacy release is
    prepared only while a shared link can still be opened (not revoked, not expired): it is the costliest
    step by far (about a minute of CPU and a gigabyte at 2,000 schools) and only shared views read it.
    """
    if not metric_ids and not has_discipline:
        return []
    steps = [Step("release", "privacy rules for shared links")] if has_live_shares else []
    steps += [Step("metric", f"district rates: {metric}", metric) for metric in opening_metrics(metric_ids)]
    if years:
        if (gaps := gaps_opening_metric(metric_ids)) is not None:
            steps.append(Step("gaps", f"growth gaps: {gaps}", gaps))
        steps.append(Step("year", f"district figures for {max(years)}", int(max(years))))
    if has_goals:
        steps.append(Step("goals", "progress of every plan goal, programme practices"))
    steps += [Step("view", f"first view: {OPENING_VIEWS[page]}", page) for page in EARLY_VIEWS]
    if has_discipline:
        steps.append(Step("discipline", "discipline and disproportionality"))
        steps.append(Step("rp", "restorative-practices impact"))
    steps.append(Step("map", "cluster areas for the map"))
    steps.append(Step("quality", "data-quality counts, import history and audit log"))
    present = {"gaps": bool(years and metric_ids), "discipline": has_discipline, "learning": has_learning}
    steps += [Step("view", f"first view: {title}", page) for page, title in OPENING_VIEWS.items()
              if present.get(page, True) and page not in EARLY_VIEWS]
    if years:  # a school's first view slices its profile
        steps.append(Step("profiles", f"every school's profile and opening view for {max(years)}", int(max(years)),
                          background=True))
    if has_discipline:
        steps.append(Step("rp_clusters", "restorative-practices impact of each cluster", background=True))
    return steps
