"""Reading district files into raw text tables, whatever shape a district's software saved them in.

CSV: UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text") or Windows-1252; comma, semicolon, tab
or pipe delimited (semicolon files from European-locale Excel also write decimal commas, which are turned
into points). XLSX: read with defused XML (openpyxl uses defusedxml when it is installed), cached formula
values, and refusal of macro-enabled workbooks, legacy `.xls`, HTML saved as a spreadsheet and archives
that would expand far beyond the upload limit.

Title rows above the header are skipped: the header is the first of the top lines that names known
columns. Everything is read as text so the validator sees exactly what the file says (`*`, `2014-15`,
leading zeros in school codes) and can report it by spreadsheet line.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.outputs.labels import counted

XLSX_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DELIMITERS = (",", ";", "\t", "|")
HEADER_SEARCH_LINES = 12  # title and note rows above the header that a file may carry
# An archive expanding to more than this many times the upload limit is refused before it is opened.
MAX_EXPANSION = 20
MAX_RATIO = 200  # real sheets compress 5-50x; a member shrunk more than this is a decompression bomb
_DECIMAL_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d+%?$")
_INNER_BLANK = re.compile(r"\n[ \t\r]*\n")
_HTML = re.compile(rb"^\s*(<!doctype\s+html|<html|<table|<\?xml[^>]*>\s*<html)", re.IGNORECASE)


class UnreadableFile(ValueError):
    """The file (or one cell of its header) cannot be read as a table; the message says why.

    ``row`` and ``column`` locate the problem when it has a place (a duplicated header, a ragged row).
    """

    def __init__(self, message: str, *, row: int | str = "-", column: str = "-", value: str = "-"):
        super().__init__(message)
        self.row, self.column, self.value = row, column, value
        self.source: str | None = None  # "book.xlsx[sheet]" when the problem is in one sheet


@dataclass
class RawTable:
    """One table as read: text cells, normalised headers, and where it came from."""

    source: str  # file name, or "book.xlsx[sheet]" for a workbook sheet
    name_hint: str  # file stem or sheet name, used to guess the table
    frame: pd.DataFrame  # every cell a str ("" when empty)
    first_data_line: int = 2  # the spreadsheet line number of the first data row
    notes: list[str] = field(default_factory=list)  # what the reader adjusted (title rows, delimiter)
    # The file's own lines, data line i the row labelled i of `frame` (:class:`CsvLines`); None when they are
    # not so plain (quotes, another delimiter, a workbook, a dropped line).
    csv_lines: CsvLines | None = None
    _factorized: dict[str, tuple[np.ndarray, pd.Index]] = field(default_factory=dict, init=False, repr=False,
                                                                compare=False)

    def factorized(self, column: str, keep: bool = True) -> tuple[np.ndarray, pd.Index]:
        """`pd.factorize` of one column's texts (each row's code, -1 for a missing cell, and the distinct texts in
        order of first appearance), worked out once when kept (``keep``): the checks and the early write of a new
        year's file both need the key's (a state's new year of metrics: 0.015 s of CPU a column). A column asked
        for once is not kept (a state's year: 10 MB of codes a column)."""
        if column in self._factorized:
            return self._factorized[column]
        factorized = pd.factorize(self.frame[column].astype(str), sort=False)
        if keep:
            self._factorized[column] = factorized
        return factorized


def known_columns() -> set[str]:
    from analytics.data.schema import TABLES

    return {c for spec in TABLES.values() for c in spec.column_names}


def normalise_header(name) -> str:
    return re.sub(r"\s+", "_", str(name if name is not None else "").strip().lower())


# --- text files ------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    """Text from the bytes: BOMs first, then UTF-16 without a BOM (NUL every other byte), UTF-8, cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    sample = data[:4096]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and sample[0::2].count(0) == 0:
        return data.decode("utf-16-le", errors="replace")
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and sample[1::2].count(0) == 0:
        return data.decode("utf-16-be", errors="replace")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _top_lines(text: str, count: int) -> list[str]:
    """The first `count` lines of `text` (as `str.splitlines` gives them) without splitting all of it:
    the delimiter and header searches look at the top of files of millions of lines, once per delimiter."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if size >= len(text):
            return lines[:count]
        if len(lines) > count:  # the last line of the slice may be cut short; it is not among the first `count`
            return lines[:count]
        size *= 4


def _sample_rows(text: str, delimiter: str, lines: int = HEADER_SEARCH_LINES + 8) -> list[list[str]]:
    head = [ln for ln in _top_lines(text, lines * 2) if ln.strip()][:lines]
    try:
        return list(csv.reader(head, delimiter=delimiter))
    except csv.Error:
        return []


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the top lines into the most columns, consistently from line to line."""
    best, best_score = ",", 0.0
    for delimiter in DELIMITERS:
        rows = _sample_rows(text, delimiter)
        widths = [len(r) for r in rows if len(r) > 1]
        if not widths:
            continue
        common = max(set(widths), key=widths.count)
        score = common * widths.count(common) / len(rows)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def find_header(rows: list[list], known: set[str] | None = None) -> int:
    """Index of the header among the top rows: the first that names the most known columns (>= 2).

    Row 0 when no row names two known columns, so an unknown layout is reported against its own first line.
    """
    known = known or known_columns()
    scores = [sum(normalise_header(c) in known for c in row) for row in rows[:HEADER_SEARCH_LINES]]
    if not scores or max(scores) < 2:
        return 0
    return scores.index(max(scores))


def _check_duplicate_headers(columns: list[str], source: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(columns):
        if not name:
            continue
        if name in seen:
            raise UnreadableFile(
                f"the column appears twice (spreadsheet columns {_col_letter(seen[name])} and {_col_letter(i)}); "
                "keep one", row=1, column=name, value=name)
        seen[name] = i


def _col_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _ragged_row(exc: Exception, offset: int) -> UnreadableFile:
    """A parser error turned into a located message (`Expected 5 fields in line 7, saw 6`)."""
    text = str(exc).splitlines()[0]
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = (int(g) for g in fields.groups())
        return UnreadableFile(f"this row has {saw} cells but the header has {expected} (a stray delimiter or "
                              "an unquoted comma in a name?)", row=line + offset, value=f"{saw} cells")
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:
        return UnreadableFile("a quotation mark opened here is never closed", row=int(quote.group(1)) + offset + 1)
    return UnreadableFile(f"not a readable CSV table ({text})")


def drop_empty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with no cell filled (Excel's `,,,,,` lines), dropped; index labels keep their line offsets."""
    if frame.empty:
        return frame
    candidates = frame.index[frame.iloc[:, 0].str.strip() == ""]
    if not len(candidates):
        return frame
    rest = frame.loc[candidates]
    empty = rest.index[~rest.apply(lambda col: col.str.strip() != "").any(axis=1)]
    return frame.drop(index=empty)


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """`12,5` -> `12.5` and `1.234,5` -> `1234.5` (semicolon-delimited files from European locales)."""
    for col in frame.columns:
        cells = frame[col]
        mask = cells.str.match(_DECIMAL_COMMA)
        if mask.any():
            frame.loc[mask, col] = cells[mask].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return frame


def _read_fast(body: bytes, delimiter: str) -> pd.DataFrame | None:
    """Arrow's multithreaded CSV reader (about 5x pandas' for text columns); any doubt -> None.

    Called directly with every column typed as text, the options `pandas.read_csv(engine="pyarrow",
    dtype=str, keep_default_na=False)` passes on, without pandas' pass over the columns afterwards
    (measured 36 ms against 61 ms for a 7 MB file).
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(
        pa.py_buffer(body),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(default_column_type=pa.large_string(), null_values=[],
                                              strings_can_be_null=False, quoted_strings_can_be_null=False))
    if len(set(table.column_names)) < table.num_columns:
        return None
    return table.to_pandas()


def read_csv_bytes(name: str, data: bytes) -> RawTable:
    text = _decode(data)
    if "\x00" in text[:8192]:
        raise UnreadableFile("not a text table (the file is binary); save it as CSV or XLSX")
    if not text or text.isspace():  # (`strip` would copy the whole text)
        raise UnreadableFile("the file is empty")
    delimiter = detect_delimiter(text)
    nonblank = [i for i, ln in enumerate(_top_lines(text, 2 * (HEADER_SEARCH_LINES + 8))) if ln.strip()]
    header_pos = find_header(_sample_rows(text, delimiter))
    skip = nonblank[header_pos] if header_pos < len(nonblank) else 0
    body, header_line = _body(text, skip)
    blank = _INNER_BLANK.search(body)  # a blank line, not counting those that end the file
    gaps = blank is not None and bool(body[blank.end():].strip())
    # A body that is the whole text of an ASCII file, read a byte a character, is its bytes already (a state's year:
    # 0.036 s to encode); UTF-16 without a byte-order mark is ASCII bytes too, two a character.
    as_read = body is text and len(text) == len(data) and data.isascii()
    encoded = None if gaps else data if as_read else body.encode("utf-8")
    try:  # blank lines between rows would shift line numbers in the fast reader: use the careful one
        frame = None if encoded is None else _read_fast(encoded, delimiter)
    except Exception:  # noqa: BLE001 - the careful reader below gives the user a precise message
        frame = None
    if frame is not None and frame.empty and len(body.strip().splitlines()) > 1:
        frame = None  # blank-looking data rows: let the careful reader decide
    careful = frame is None  # only the careful reader leaves NaN (in the cells a short row lacks)
    try:
        if careful:
            frame = pd.read_csv(io.StringIO(body), sep=delimiter, dtype=str, keep_default_na=False,
                                skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        raise _ragged_row(exc, skip) from exc
    except pd.errors.EmptyDataError as exc:
        raise UnreadableFile("the file is empty") from exc
    header = next(csv.reader([header_line], delimiter=delimiter), [])
    _check_duplicate_headers([normalise_header(h) for h in header], name)
    frame.columns = [normalise_header(h) for h in header[: len(frame.columns)]] + \
        [normalise_header(c) for c in frame.columns[len(header):]]
    notes = []
    if skip:
        notes.append(f"{name}: skipped {counted(skip, 'line')} above the header row (a title or note)")
    if delimiter != ",":
        notes.append(f"{name}: read as {_DELIMITER_NAMES[delimiter]}-delimited")
    frame = drop_empty_rows(frame.fillna("") if careful else frame)
    if delimiter == ";":
        frame = _decimal_commas(frame)
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    lines = None if careful or delimiter != "," else _data_lines(encoded, frame.columns, len(frame))
    return RawTable(name, stem, frame, first_data_line=skip + 2, notes=notes, csv_lines=lines)


def _data_lines(body: bytes, columns: Sequence[str], rows: int) -> CsvLines | None:
    """The body read by the fast reader (its header line first) as :class:`CsvLines`, when its data lines are
    the frame's rows one for one: no quote (a quoted cell may hold a delimiter or a line break) and no line
    dropped (a blank or empty line: the frame holds fewer rows than the body lines). The line ends found to
    count them are kept for sending the lines."""
    if not rows or b'"' in body:
        return None
    body = body if body.endswith(b"\n") else body + b"\n"
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n")) + 1
    return CsvLines(columns, body, ends) if len(ends) == rows + 1 else None


class CsvLines:
    """A CSV file's own lines (UTF-8, comma-delimited, unquoted, each ending in `\n`, the header line first),
    sent to `COPY` (`bulk_write.upsert`) for rows whose every cell the importer would store as it is written (a
    whole number as digits, a code in its stored case, no suppression mark, no space around a value;
    `importer.validate_table` decides). COPY reads such a line as it reads the line Arrow writes from the typed
    rows, so the rows stored are the same, and the text is not made again (a state's new year of metrics:
    62 MB that Arrow wrote in ~0.35 s of CPU).

    ``columns`` are the file's, in its order; data line ``i`` is the frame row labelled ``i``; ``ends``: the
    offset after each line's `\n` (the header's first)."""

    def __init__(self, columns: Sequence[str], body: bytes, ends: np.ndarray):
        self.columns = list(columns)
        self.body = body
        self.ends = ends

    @functools.cached_property
    def _lines(self):
        """The data lines as an Arrow array of byte strings over the body itself (no copy), made when the lines
        are first sent: a file only validated, or written to SQLite, never needs it."""
        import pyarrow as pa

        ends = self.ends.astype(np.int64, copy=False)
        return pa.Array.from_buffers(pa.large_binary(), len(ends) - 1, [None, pa.py_buffer(ends), pa.py_buffer(self.body)])

    def chunks(self, rows: np.ndarray, size: int = 200_000) -> Iterator[bytes]:
        """The lines of ``rows`` (data line numbers) in that order, ``size`` lines at a time, gathered by Arrow's
        `take` (a state's new year in school order: 0.05 s of CPU, where slicing the lines in Python took
        0.57 s and Arrow wrote the rows' text in ~0.35 s)."""
        for start in range(0, len(rows), size):
            taken = self._lines.take(np.asarray(rows[start : start + size]))
            _, offsets, data = taken.buffers()
            first, last = np.frombuffer(offsets, dtype=np.int64)[[taken.offset, taken.offset + len(taken)]]
            yield data.slice(int(first), int(last - first)).to_pybytes()


# Line breaks `str.splitlines` honours besides \n and \r (a file holding one is re-joined line by line);
# looked for one by one with `in` (a scan in C, and none at all for a mark wider than the text's characters),
# about 15x quicker than a character-class regex over a file of millions of characters.
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _body(text: str, skip: int) -> tuple[str, str]:
    """The text from the header line on with `\n` line ends, and the header line.

    A file whose header is its first line and whose lines end in `\n` or `\r\n` is used as it is rather
    than split into millions of lines and joined again.
    """
    if skip == 0:
        body = text.replace("\r\n", "\n") if "\r" in text else text
        if "\r" not in body and not any(mark in body for mark in _OTHER_BREAKS):
            end = body.find("\n")
            return body, body if end < 0 else body[:end]
    lines = text.splitlines()
    return "\n".join(lines[skip:]), lines[skip]


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


# --- workbooks -------------------------------------------------------------------------------------


def _check_archive(data: bytes, name: str, limit: int) -> zipfile.ZipFile:
    """Open a ZIP safely: refuse macro-enabled workbooks, non-workbooks and archive bombs before parsing."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("a damaged ZIP/XLSX file (it could not be opened); save it again as XLSX") from exc
    names = set(archive.namelist())
    lower = name.lower()
    if "xl/vbaProject.bin" in names or lower.endswith((".xlsm", ".xltm", ".xlsb")):
        raise UnreadableFile("macro-enabled workbooks are refused; save it as an Excel Workbook (.xlsx)")
    if "xl/workbook.xml" not in names:
        raise UnreadableFile("a ZIP archive, not an XLSX workbook or a CSV file; unzip it and import the files "
                             "inside")
    expanded = sum(info.file_size for info in archive.infolist())
    bomb = any(info.file_size > 10 * 1048576 and info.file_size > MAX_RATIO * max(info.compress_size, 1)
               for info in archive.infolist())
    if expanded > MAX_EXPANSION * limit or bomb:
        raise UnreadableFile(f"the workbook would expand to {expanded / 1048576:,.0f} MB when opened "
                             f"({len(data) / 1048576:,.1f} MB on disk): refused as unsafe")
    return archive


def _has_formulas(archive: zipfile.ZipFile) -> bool:
    return any(info.filename.startswith("xl/worksheets/") and b"<f" in archive.read(info.filename)
               for info in archive.infolist())


def _sheet_rows(ws) -> list[list]:
    return [list(row) for row in ws.iter_rows(values_only=True)]


def _sheet_frame(rows: list[list], formulas: list[list] | None, source: str) -> tuple[pd.DataFrame, int] | None:
    """(text frame, first data line) of one sheet, or None when it has no header row."""
    header_pos = find_header(rows)
    while header_pos < len(rows) and all(v is None or str(v).strip() == "" for v in rows[header_pos]):
        header_pos += 1
    if header_pos >= len(rows):
        return None
    header = rows[header_pos]
    width = max(i for i, h in enumerate(header) if h is not None and str(h).strip() != "") + 1
    columns = [normalise_header(h) for h in header[:width]]
    _check_duplicate_headers(columns, source)
    body = []
    for r, row in enumerate(rows[header_pos + 1:], start=header_pos + 1):
        cells = [_cell_text(v) for v in row[:width]] + [""] * (width - len(row[:width]))
        if formulas is not None:
            for c, v in enumerate(row[:width]):
                formula = formulas[r][c] if c < len(formulas[r]) else None
                if v is None and isinstance(formula, str) and formula.startswith("="):
                    raise UnreadableFile("a formula whose result was never saved (the file was written by a program "
                                         "that does not calculate): open it in Excel and save it again",
                                         row=r + 1, column=columns[c], value=formula)
        body.append(cells)
    return drop_empty_rows(pd.DataFrame(body, columns=columns, dtype=str)), header_pos + 2


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_xlsx_bytes(name: str, data: bytes, limit: int | None = None) -> list[RawTable]:
    from openpyxl import load_workbook
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:  # never parse uploaded XML without protection against entity expansion
        raise UnreadableFile("XLSX import needs the defusedxml package on the server")
    archive = _check_archive(data, name, limit or len(data) * MAX_EXPANSION)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formula_book = load_workbook(io.BytesIO(data), read_only=True) if _has_formulas(archive) else None
    except Exception as exc:  # noqa: BLE001 - openpyxl and defusedxml raise many kinds for a bad file
        kind = type(exc).__name__
        causes = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
        if any("Forbidden" in k for k in causes):  # defusedxml refused entity declarations or DTD tricks
            raise UnreadableFile("the workbook declares XML entities (a known attack); refused as unsafe") from exc
        raise UnreadableFile(f"not a readable XLSX workbook ({kind})") from exc
    tables = []
    try:
        for ws in book.worksheets:
            rows = _sheet_rows(ws)
            formulas = _sheet_rows(formula_book[ws.title]) if formula_book else None
            source = f"{name}[{ws.title}]"
            try:
                shaped = _sheet_frame(rows, formulas, source) if rows else None
            except UnreadableFile as exc:
                exc.source = source
                raise
            if shaped is not None:
                frame, first_line = shaped
                notes = ([f"{source}: skipped {counted(first_line - 2, 'row')} above the header row"]
                         if first_line > 2 else [])
                tables.append(RawTable(source, ws.title.strip().lower(), frame, first_line, notes))
    finally:
        book.close()
        if formula_book is not None:
            formula_book.close()
    if not tables:
        raise UnreadableFile("the workbook has no sheet with a header row")
    return tables


def _refuse_other_formats(name: str, data: bytes) -> None:
    if data.startswith(OLE2_MAGIC):
        raise UnreadableFile("an Excel 97-2003 workbook (.xls) or another legacy Office file; save it as an Excel "
                             "Workbook (.xlsx) or CSV")
    if _HTML.match(data[:1024]):
        raise UnreadableFile("a web page (HTML) saved with a spreadsheet name; open it in Excel and save it as "
                             "an Excel Workbook (.xlsx) or CSV")
    if data.startswith(b"%PDF"):
        raise UnreadableFile("a PDF document, not a table; export the data as CSV or XLSX")
    if name.lower().endswith((".xlsx", ".xlsm")) and not data.startswith(XLSX_MAGIC):
        raise UnreadableFile("named like an Excel workbook but it is not one; save it again as .xlsx or CSV")


def read_tables(name: str, data: bytes, limit: int | None = None) -> list[RawTable]:
    """Every table in a file: one for a CSV, one per non-empty sheet for an XLSX workbook.

    ``limit`` is the upload limit in bytes; a workbook may expand to at most ``MAX_EXPANSION`` times it.
    """
    if data.startswith(XLSX_MAGIC):
        return read_xlsx_bytes(name, data, limit)
    _refuse_other_formats(name, data)
    return [read_csv_bytes(name, data)]
