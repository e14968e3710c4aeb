"""Root causes (with 5-whys chains) and walkthrough look-fors: parsing, formatting and the checks on save.

Walkthroughs are non-evaluative: notes describe practice, never people. `name_like` catches the
common ways a person gets named in a note (titles such as "Ms. Lopez") so the form can refuse them.
"""

from __future__ import annotations

import re

LOOK_FOR = re.compile(r"^\s*(?P<item>.+?)\s*:\s*(?P<k>\d+)\s*(?:/|of)\s*(?P<n>\d+)\s*$")
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


def check_walkthrough(visit: dict) -> list[tuple[str, str]]:
    problems = []
    try:
        parse_look_fors(visit.get("look_fors"))
    except ValueError as exc:
        problems.append(("look_fors", str(exc)))
    for field in ("notes", "next_steps", "look_fors", "focus"):
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
