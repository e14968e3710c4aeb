"""Level 4 (use) from two sources: imported `implementation` observations and walkthrough look-fors tagged with a
programme practice (DESIGN §9 and §10: "observed k of n classrooms (from walkthroughs too)").

A look-for "observed in k of n classrooms" tagged `look-for = PROGRAM: practice` is one observation of that
practice: ``classrooms_using = k`` of ``classrooms_observed = n`` on the visit's date. ``combine`` stacks both
sources into the ``implementation`` frame every level-4 and level-5 computation reads (fidelity over time,
run charts, the programme median, dose-response tertiles and the nexus), with a ``source`` column.

**No double counting.** An imported observation and a tagged look-for describe the same visit when they share
programme, school, date and practice (practice compared without regard to case or surrounding spaces). Then
the imported row is kept (the programme's own record, often keyed in from that very walkthrough) and the
look-for is left out; the imported row says so in ``also_on_walkthrough``. Within one walkthrough a practice is
tagged at most once (checked on save and on import), so one visit never counts the same classrooms twice.
Two walkthroughs of one school on one day are different visits (different ``visit_id``) and both count.
A practice spelled differently in case across the sources is one series, under its first spelling (imported
rows first).

Privacy: only counts leave a walkthrough here (never its notes or next steps); with ``shareable_only`` (shared
links and public exports) only visits marked shareable count, as on the shared `/plans` page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.outputs.labels import counted, for_count
from analytics.workspace import notes

IMPORTED, WALKTHROUGHS = "imported observations", "walkthroughs"
COLUMNS = ["program", "school_id", "observed_on", "practice", "classrooms_observed", "classrooms_using", "source",
           "visit_id", "also_on_walkthrough"]
SERIES_COLUMNS = ["school_id", "practice", "source", "observations", "from_walkthroughs", "using", "observed",
                  "fidelity", "first", "last"]
VISIT_COLUMNS = ("visit_id", "school_id", "visit_date", "look_fors", "practices", "shareable")  # what tags are read from


def walkthrough_observations(walkthroughs: pd.DataFrame, shareable_only: bool = False,
                             programs: Sequence[str] | None = None) -> pd.DataFrame:
    """One observation per tagged look-for: ``program, school_id, observed_on, practice, classrooms_observed,
    classrooms_using, source, visit_id`` (untagged look-fors are not implementation evidence); with
    ``programs``, only tags of those programmes. A tag names its programme as written, so a visit whose
    practices do not contain a programme's id is not parsed for it (the same rows, without parsing every
    visit of the district for one programme)."""
    visits = walkthroughs
    if "practices" not in visits or visits.empty:
        return pd.DataFrame(columns=COLUMNS)
    text = visits["practices"].fillna("").astype(str)
    keep = text.str.strip() != ""
    if programs is not None:
        keep &= pd.concat([text.str.contains(p, regex=False) for p in programs], axis=1).any(axis=1) \
            if len(programs) else False
    visits = visits[keep]
    if shareable_only:
        visits = visits[visits["shareable"].fillna(False).astype(bool)]
    # A visit's tags depend on its two texts alone: each distinct pair is parsed once (a district's 90,000
    # visits at 10,000 schools write a few thousand), and every visit takes its pair's tags, in visit order.
    look_codes, look_texts = pd.factorize(visits["look_fors"].fillna("").astype(str))
    tag_codes, tag_texts = pd.factorize(visits["practices"].fillna("").astype(str))
    codes, pairs = pd.factorize(look_codes * max(len(tag_texts), 1) + tag_codes)
    look_texts, tag_texts = look_texts.tolist(), tag_texts.tolist()  # an Index's items are read one by one slowly
    parsed = [_tags(look_texts[p // len(tag_texts)], tag_texts[p % len(tag_texts)]) for p in pairs.tolist()]
    count = np.array([len(tags) for tags in parsed], dtype=np.int64)
    first = np.cumsum(count) - count  # where each pair's tags start among every pair's, laid end to end
    tags = [tag for pair_tags in parsed for tag in pair_tags]
    per_visit = count[codes]
    visit = np.repeat(np.arange(len(codes)), per_visit)
    within = np.arange(len(visit)) - np.repeat(np.cumsum(per_visit) - per_visit, per_visit)
    if not len(visit):
        return pd.DataFrame(columns=COLUMNS)
    picked = [tags[i] for i in first[codes[visit]] + within]
    out = pd.DataFrame({"program": [t[0] for t in picked], "school_id": visits["school_id"].to_numpy()[visit],
                        "observed_on": visits["visit_date"].to_numpy()[visit], "practice": [t[1] for t in picked],
                        "classrooms_observed": [t[2] for t in picked], "classrooms_using": [t[3] for t in picked],
                        "source": WALKTHROUGHS, "visit_id": visits["visit_id"].to_numpy()[visit],
                        "also_on_walkthrough": False}, columns=COLUMNS)
    return out if programs is None else out[out["program"].isin(list(programs))].reset_index(drop=True)


def _tags(look_fors: str, practices: str) -> list[tuple[str, str, int, int]]:
    """A visit's tagged look-fors as (programme, practice, classrooms observed, classrooms using); none when its
    records cannot be read (they were checked on save and import: an unreadable one is evidence of nothing)."""
    try:
        looks = {i["item"]: i for i in notes.parse_look_fors(look_fors)}
        tags = notes.parse_practices(practices, list(looks.values()))
    except ValueError:
        return []
    return [(t["program"], t["practice"], looks[t["item"]]["classrooms"], looks[t["item"]]["observed"])
            for t in tags]


def _visit_key(frame: pd.DataFrame) -> pd.Series:
    day = pd.to_datetime(frame["observed_on"]).dt.strftime("%Y-%m-%d")
    practice = frame["practice"].astype(str).str.strip().str.casefold()
    return frame["program"].astype(str) + "\x1f" + frame["school_id"].astype(str) + "\x1f" + day + "\x1f" + practice


def combine(imported: pd.DataFrame, from_walkthroughs: pd.DataFrame) -> pd.DataFrame:
    """Imported observations and walkthrough observations as one ``implementation`` frame (``COLUMNS``), a
    look-for of a visit that an imported row already describes left out (see the module docstring)."""
    own = imported.assign(source=IMPORTED, visit_id=None) if len(imported) else pd.DataFrame(columns=COLUMNS)
    walk = from_walkthroughs if len(from_walkthroughs) else pd.DataFrame(columns=COLUMNS)
    # Looked up as Python strings (a hash table): a text column's isin converts every value it is given one by one
    # (1.5 s for the 180,000 look-fors of 10,000 schools, with no imported row to find them in).
    own_keys, walk_keys = (pd.Index(_visit_key(part), dtype=object) for part in (own, walk))
    own = own.assign(also_on_walkthrough=own_keys.isin(walk_keys))
    walk = walk[~walk_keys.isin(own_keys)]
    parts = [p[COLUMNS] for p in (own, walk) if len(p)]
    if not parts:
        return pd.DataFrame(columns=COLUMNS).astype({"classrooms_observed": "int64", "classrooms_using": "int64",
                                                     "observed_on": "datetime64[ns]"})
    out = pd.concat(parts, ignore_index=True)
    out["observed_on"] = pd.to_datetime(out["observed_on"])
    out[["classrooms_observed", "classrooms_using"]] = out[["classrooms_observed", "classrooms_using"]].astype("int64")
    canonical = out["program"].astype(str) + "\x1f" + out["practice"].astype(str).str.strip().str.casefold()
    out["practice"] = out.groupby(canonical)["practice"].transform("first").str.strip()
    return out


def source_counts(implementation: pd.DataFrame) -> dict[str, int]:
    """Observations counted from each source, and imported ones that a walkthrough look-for also described."""
    source = implementation["source"] if "source" in implementation else pd.Series(IMPORTED, index=implementation.index)
    also = implementation.get("also_on_walkthrough", pd.Series(False, index=implementation.index))
    return {IMPORTED: int((source == IMPORTED).sum()), WALKTHROUGHS: int((source == WALKTHROUGHS).sum()),
            "matched": int(also.fillna(False).astype(bool).sum())}


def describe_sources(implementation: pd.DataFrame) -> str:
    """`"from 212 walkthrough look-fors and 12 imported observations"` (the level-4 finding's source clause)."""
    counts = source_counts(implementation)
    parts = []
    if counts[WALKTHROUGHS]:
        parts.append(counted(counts[WALKTHROUGHS], "walkthrough look-for"))
    if counts[IMPORTED]:
        parts.append(counted(counts[IMPORTED], "imported observation"))
    text = "from " + " and ".join(parts) if parts else "from no observations"
    if counts["matched"]:
        matched = counts["matched"]
        text += (f"; {counted(matched, 'visit')} {for_count(matched, 'was', 'were')} both imported and recorded as a "
                 f"walkthrough and {for_count(matched, 'is', 'are')} counted once")
    return text


def series_sources(implementation: pd.DataFrame) -> pd.DataFrame:
    """One series per school and practice: where its observations come from, how many, and pooled fidelity
    (classrooms using / classrooms observed, in percent) over its first to last date."""
    if implementation.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    source = implementation.get("source", pd.Series(IMPORTED, index=implementation.index))
    work = implementation.assign(_walk=source == WALKTHROUGHS, observed_on=pd.to_datetime(implementation["observed_on"]))
    out = work.groupby(["school_id", "practice"], as_index=False).agg(
        observations=("classrooms_observed", "size"), from_walkthroughs=("_walk", "sum"),
        using=("classrooms_using", "sum"), observed=("classrooms_observed", "sum"),
        first=("observed_on", "min"), last=("observed_on", "max"))
    out["source"] = [WALKTHROUGHS if w == n else IMPORTED if w == 0 else f"{IMPORTED} and {WALKTHROUGHS}"
                     for w, n in zip(out["from_walkthroughs"], out["observations"], strict=True)]
    out["fidelity"] = 100 * out["using"] / out["observed"].where(out["observed"] > 0)
    return out[SERIES_COLUMNS]


def known_practices(implementation: pd.DataFrame) -> dict[str, list[str]]:
    """Practices already observed per programme (either source), for the walkthrough form's hint."""
    if implementation.empty:
        return {}
    pairs = implementation[["program", "practice"]].drop_duplicates().sort_values(["program", "practice"])
    return {str(p): group["practice"].tolist() for p, group in pairs.groupby("program", sort=True)}


def practices_known(imported: pd.DataFrame, walkthroughs: pd.DataFrame) -> dict[str, list[str]]:
    """:func:`known_practices` of :func:`combine` of the imported observations and the walkthroughs' tags, with
    each distinct pair of look-fors and tags parsed once (the first visit that wrote it): a district's
    walkthroughs repeat a few thousand such pairs (a seventh of 90,000 visits at 10,000 schools). The same
    pairs: a visit's tags depend on those two texts alone, each spelling's first visit is kept in table order,
    and a tag :func:`combine` leaves out has an imported row of the same practice before it."""
    if "practices" in walkthroughs and len(walkthroughs):
        walkthroughs = walkthroughs.drop_duplicates(["look_fors", "practices"])
    return known_practices(combine(imported, walkthrough_observations(walkthroughs)))
