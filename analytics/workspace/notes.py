"""Root causes (with 5-whys chains) and walkthrough look-fors: parsing, formatting and the checks on save.

A look-for can name the professional-learning practice it observes (`practices`: `look-for = PROGRAM:
practice`), so the visit's "observed in k of n classrooms" counts also feed level 4 of `/learning`
(`analytics.learning.fidelity`).

Walkthroughs are non-evaluative: notes describe practice, never people. `name_like` catches the
common ways a person gets named in a note (titles such as "Ms. Lopez") so the form can refuse them.
"""

from __future__ import annotations

import re

LOOK_FOR = re.compile(r"^\s*(?P<item>.+?)\s*:\s*(?P<k>\d+)\s*(?:/|of)\s*(?P<n>\d+)\s*$")
PRACTICE_TAG = re.compile(r"^\s*(?P<item>.+?)\s*=\s*(?P<program>[^:=]+?)\s*:\s*(?P<practice>.+?)\s*$")
_TITLE_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Coach)\.?\s+[A-Z][a-z]+")


def parse_look_fors(text: object) -> list[dict]:
    """`"Learning target posted: 5/8; Student talk: 3 of 8"` -> [{item, observed, classrooms}, ...].

    Raises ValueError naming the part that is not `item: k/n` or where k > n.
    """
    if text is None or (isinstance(text, float) and text != text) or not str(text).strip():
        return []
    out = []
    for part in re.split(r"[;\n]", str(text)):
        if not part.strip():
            continue
        match = LOOK_FOR.match(part)
        if not match:
            raise ValueError(f"look-for {part.strip()!r} is not `item: k/n` (observed in k of n classrooms)")
        k, n = int(match["k"]), int(match["n"])
        if n == 0 or k > n:
            raise ValueError(f"look-for {part.strip()!r}: k must be between 0 and n, and n above 0")
        out.append({"item": match["item"], "observed": k, "classrooms": n, "share": 100.0 * k / n})
    return out


def format_look_fors(items: list[dict]) -> str:
    return "; ".join(f"{i['item']}: {int(i['observed'])}/{int(i['classrooms'])}" for i in items)


def parse_practices(text: object, look_fors: list[dict] | None = None) -> list[dict]:
    """`"Circle held = RP: Restorative circles"` -> [{item, program, practice}, ...], `;` or line separated.

    With the visit's parsed ``look_fors`` each tagged item must be one of them (matched without regard to
    case; the look-for's own wording is returned) and a practice may be tagged once per visit, since two
    look-fors of one visit would count the same classrooms twice. Raises ValueError naming the entry.
    """
    if text is None or (isinstance(text, float) and text != text) or not str(text).strip():
        return []
    items = {i["item"].casefold(): i["item"] for i in look_fors} if look_fors is not None else None
    out, seen = [], set()
    for part in re.split(r"[;\n]", str(text)):
        if not part.strip():
            continue
        match = PRACTICE_TAG.match(part)
        if not match:
            raise ValueError(f"practice tag {part.strip()!r} is not `look-for = PROGRAM: practice`")
        item = match["item"]
        if items is not None:
            if item.casefold() not in items:
                raise ValueError(f"practice tag {part.strip()!r}: {item!r} is not one of this visit's look-fors")
            item = items[item.casefold()]
        key = (match["program"].casefold(), match["practice"].casefold())
        if key in seen:
            raise ValueError(f"practice {match['program']}: {match['practice']} is tagged on two look-fors of one "
                             "visit; tag it once (the same classrooms would be counted twice)")
        seen.add(key)
        out.append({"item": item, "program": match["program"], "practice": match["practice"]})
    return out


def format_practices(tags: list[dict]) -> str:
    return "; ".join(f"{t['item']} = {t['program']}: {t['practice']}" for t in tags)


def parse_whys(text: object) -> list[str]:
    """A 5-whys chain, one why per line or separated by ` > `; at most five are kept in order."""
    if text is None or (isinstance(text, float) and text != text):
        return []
    parts = re.split(r"\n|\s>\s", str(text))
    return [p.strip(" -•\t") for p in parts if p.strip(" -•\t")]


def name_like(text: object) -> str | None:
    """The first thing in `text` that looks like a person's name with a title (e.g. "Ms. Lopez"), if any."""
    if not isinstance(text, str):
        return None
    match = _TITLE_NAME.search(text)
    return match.group(0) if match else None


def check_walkthrough(visit: dict, programs: set[str] | None = None) -> list[tuple[str, str]]:
    """Problems of a visit as (field, message); ``programs``: the known PL programme ids (checked when given)."""
    problems = []
    looks = None
    try:
        looks = parse_look_fors(visit.get("look_fors"))
    except ValueError as exc:
        problems.append(("look_fors", str(exc)))
    try:
        tags = parse_practices(visit.get("practices"), looks)
        unknown = sorted({t["program"] for t in tags} - programs) if programs is not None else []
        if unknown:
            problems.append(("practices", f"unknown programme {', '.join(unknown)} (not in pl_programs"
                                          + (f"; known: {', '.join(sorted(programs))})" if programs else ")")))
    except ValueError as exc:
        problems.append(("practices", str(exc)))
    for field in ("notes", "next_steps", "look_fors", "focus", "practices"):
        found = name_like(visit.get(field))
        if found:
            problems.append((field, f"{found!r} looks like a name: walkthrough notes are non-evaluative and name "
                                    "no teacher or student"))
    return problems


def check_root_cause(cause: dict) -> list[tuple[str, str]]:
    problems = []
    if not str(cause.get("statement") or "").strip():
        problems.append(("statement", "a cause statement is required"))
    if len(parse_whys(cause.get("whys"))) > 5:
        problems.append(("whys", "a 5-whys chain has at most five whys"))
    return problems
