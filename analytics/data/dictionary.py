"""The data dictionary as Markdown, generated from `schema.TABLES` (the validator's own rules).

`python -m analytics.data.dictionary > docs/data-dictionary.md` regenerates the published page; a test
fails when the page and the schema disagree.
"""

from __future__ import annotations

from analytics.data.catalog import BUILTIN_METRICS, STUDENT_GROUPS
from analytics.data.schema import TABLES


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    lines = [
        "# Data dictionary",
        "",
        "Generated from `analytics/data/schema.py`, the same definitions the importer validates against.",
        "Files are CSV (UTF-8, UTF-8 with BOM or Windows-1252) or XLSX (one sheet per table, named after",
        "the table). Headers are case-insensitive. `school_year` is the ending year (2024 = 2023-24);",
        "`2023-24` and `2023-2024` are accepted. In optional count or value columns `*`, `n<10`, `<= 5.0`",
        "style marks and empty cells mean *suppressed or unknown*: stored as missing, never as zero.",
        "",
    ]
    for table in TABLES.values():
        lines += [f"## `{table.name}`", "", table.description, "",
                  f"Natural key (re-importing a key replaces the row): `{', '.join(table.key)}`.", "",
                  "| column | type | required | allowed values | description |",
                  "| --- | --- | --- | --- | --- |"]
        for col in table.columns:
            allowed = ", ".join(col.allowed) if col.allowed and len(col.allowed) <= 8 else (
                "a student-group code (below)" if col.allowed else "")
            lines.append(f"| `{col.name}` | {col.kind} | {'yes' if col.required else ''} | "
                         f"{_cell(allowed)} | {_cell(col.description)} |")
        lines.append("")
    lines += ["## Student groups", "", "| code | group |", "| --- | --- |"]
    lines += [f"| `{code}` | {label} |" for code, label in STUDENT_GROUPS.items()]
    lines += ["", "## Built-in metrics", "", "| metric | label | unit | higher is better | category |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{m.metric}` | {m.label} | {m.unit} | {'yes' if m.higher_is_better else 'no'} | {m.category} |"
              for m in BUILTIN_METRICS]
    lines.append("")
    return "\n".join(lines)


def template_csv(table: str) -> bytes:
    """A blank import template: the header row of `table` (required columns first), UTF-8."""
    spec = TABLES[table]
    ordered = [c.name for c in spec.columns if c.required] + [c.name for c in spec.columns if not c.required]
    return (",".join(ordered) + "\n").encode("utf-8")


def templates_xlsx(tables: list[str] | None = None) -> bytes:
    """Blank templates as one workbook: a sheet per table, named after it (the importer reads it as is)."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for name in tables or list(TABLES):
        ws = book.create_sheet(name[:31])
        ws.append(template_csv(name).decode("utf-8").strip().split(","))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            ws.column_dimensions[cell.column_letter].width = max(12, len(str(cell.value)) + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


if __name__ == "__main__":
    print(markdown(), end="")
