"""The release decision in a process of its own (:func:`analytics.access.release_store.decide_apart`).

    python -m analytics.access.release_child INPUTS.pickle RELEASE.parquet

Reads (schools, metrics, discipline, settings, complementary, seconds, earlier) from the pickle its parent wrote,
decides (:func:`analytics.access.release.build_release`, pieces still undecided after ``seconds`` withheld, pieces
unchanged since ``earlier``, a stored decision or None, taken from it) and writes the release in its stored
form. The parent waits for it; whatever memory the decision took ends with this process."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from analytics.access.release import build_release
from analytics.access.release_store import _earlier_release, _to_blob


def main(argv: list[str]) -> int:
    given, decided = (Path(a) for a in argv)
    with given.open("rb") as inputs:
        schools, metrics, discipline, settings, complementary, seconds, earlier = pickle.load(inputs)
    release = build_release(schools, metrics, discipline, settings, complementary, seconds=seconds,
                            earlier=_earlier_release(earlier))
    partial = decided.with_suffix(".partial")
    partial.write_bytes(_to_blob(release))
    partial.replace(decided)  # whole or absent: a child stopped mid-write leaves nothing to read
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
