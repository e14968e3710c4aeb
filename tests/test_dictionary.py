"""The published data dictionary is generated from the validator's schema and must match it."""

from pathlib import Path

from analytics.data import dictionary, schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"


def test_published_dictionary_matches_schema():
    assert DOC.read_text(encoding="utf-8") == dictionary.markdown(), (
        "docs/data-dictionary.md is stale: run `python -m analytics.data.dictionary > docs/data-dictionary.md`"
    )


def test_every_importable_column_is_documented():
    frame = schema.data_dictionary()
    for table in schema.TABLES.values():
        documented = set(frame.loc[frame["table"] == table.name, "column"])
        assert documented == set(table.column_names)
        assert all(f"`{c}`" in DOC.read_text(encoding="utf-8") for c in table.column_names)
