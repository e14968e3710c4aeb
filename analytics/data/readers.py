"""Reading district files into raw text tables: CSV in UTF-8, UTF-8 with BOM or Windows-1252, and XLSX.

Everything is read as text so the validator sees exactly what the file says (`*`, `2014-15`,
leading zeros in school codes) and can report it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd

XLSX_MAGIC = b"PK\x03\x04"


class UnreadableFile(ValueError):
    """The file is not a table this product can read; the message says why."""


@dataclass
class RawTable:
    """One table as read: text cells, normalised headers, and where it came from."""

    source: str  # file name, or "book.xlsx[sheet]" for a workbook sheet
    name_hint: str  # file stem or sheet name, used to guess the table
    frame: pd.DataFrame  # every cell a str ("" when empty)
    first_data_line: int = 2  # the spreadsheet line number of the first data row


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _normalise_headers(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [re.sub(r"\s+", "_", str(c).strip().lower()) for c in frame.columns]
    return frame


def _read_fast(text: str) -> pd.DataFrame:
    """Arrow's multithreaded CSV reader (about 5x pandas' for text columns); any doubt -> None."""
    frame = pd.read_csv(io.BytesIO(text.encode("utf-8")), dtype=str, keep_default_na=False, engine="pyarrow")
    if frame.columns.duplicated().any():
        return None
    return frame.fillna("")


def read_csv_bytes(name: str, data: bytes) -> RawTable:
    if b"\x00" in data[:8192]:
        raise UnreadableFile("not a text table (the file is binary); save it as CSV or XLSX")
    text = _decode(data)
    if not text.strip():
        raise UnreadableFile("the file is empty")
    try:
        frame = _read_fast(text)
    except Exception:  # noqa: BLE001 - the careful reader below gives the user a precise message
        frame = None
    if frame is not None and frame.empty and len(text.strip().splitlines()) > 1:
        frame = None  # blank-looking data rows: let the careful reader decide
    try:
        if frame is None:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        raise UnreadableFile(f"not a readable CSV table ({str(exc).splitlines()[0]})") from exc
    except pd.errors.EmptyDataError as exc:
        raise UnreadableFile("the file is empty") from exc
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return RawTable(name, stem, _normalise_headers(frame))


def _sheet_frame(ws) -> pd.DataFrame | None:
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None or all(h is None or str(h).strip() == "" for h in header):
        return None
    width = max(i for i, h in enumerate(header) if h is not None and str(h).strip() != "") + 1
    body = [["" if v is None else _cell_text(v) for v in row[:width]] + [""] * (width - len(row[:width]))
            for row in rows]
    cols = ["" if h is None else str(h) for h in header[:width]]
    return _normalise_headers(pd.DataFrame(body, columns=cols, dtype=str))


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_xlsx_bytes(name: str, data: bytes) -> list[RawTable]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise UnreadableFile(f"not a readable XLSX workbook ({type(exc).__name__})") from exc
    tables = []
    for ws in book.worksheets:
        frame = _sheet_frame(ws)
        if frame is not None:
            tables.append(RawTable(f"{name}[{ws.title}]", ws.title.strip().lower(), frame))
    book.close()
    if not tables:
        raise UnreadableFile("the workbook has no sheet with a header row")
    return tables


def read_tables(name: str, data: bytes) -> list[RawTable]:
    """Every table in a file: one for a CSV, one per non-empty sheet for an XLSX workbook."""
    if data.startswith(XLSX_MAGIC):
        return read_xlsx_bytes(name, data)
    return [read_csv_bytes(name, data)]
