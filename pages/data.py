"""`/data` (editors): import files all or nothing, see problems, import history, the audit log and the data
dictionary."""

import functools
import math

import pandas as pd
import streamlit as st

from analytics.config import max_upload_bytes
from analytics.data import importer, schema
from analytics.data.dictionary import template_csv, templates_xlsx
from analytics.outputs.labels import counted, for_count
from pages import ui
from pages.ui import data_views

if not ui.can_edit():  # app.py serves /data to editors only; a page run on its own checks again
    ui.editors_only()
    st.stop()
st.title("Data")
st.caption("Import the district's files. An import is all or nothing: if any row has a problem, nothing is "
           "written and every problem is listed with its line and column.")

engine = ui.engine()
# Only the open tab is drawn (switching tabs reruns the page): the page opens on the import form, and the other
# tabs' data-quality counts, import history, row counts and audit log (read over every row: seconds at 10,000
# schools until the preparer has made them) are read when their tab is opened.
tab_import, tab_quality, tab_history, tab_audit, tab_dictionary = st.tabs(
    ["Import", "Data quality", "Import history", "Audit log", "Data dictionary"], key="tab", bind="query-params",
    on_change="rerun")

# The uploader and the table choice are drawn whichever tab is open: a widget left out of a run forgets its
# value, and the files chosen would be gone on coming back from the dictionary.
with tab_import:
    limit_mb = max(1, math.ceil(max_upload_bytes() / 1048576))  # one setting for the uploader and the importer
    files = st.file_uploader("CSV or XLSX files (name each file or sheet after its table)",
                             type=["csv", "xlsx"], accept_multiple_files=True, key="uploads", max_upload_size=limit_mb)
    choices = ["(from the file or sheet name)", *schema.TABLES]
    table = st.selectbox("Table", choices, key="import_table",
                         help="Leave as is when files are named schools.csv, metrics.csv, discipline.csv …")
    chosen_table = None if table == choices[0] else table
    st.caption(f"Size limit: {limit_mb} MB per file (SSIF_MAX_UPLOAD_MB).")
    if files and tab_import.open:  # checked and previewed while their tab is open
        payload = [(f.name, f.getvalue()) for f in files]
        report = importer.validate_bytes(engine, payload, table=chosen_table)
        for result in report.results:
            with st.expander(f"Preview: {result.source} → {result.table} ({counted(len(result.frame), 'row')})"):
                st.dataframe(result.frame.head(20), hide_index=True, width="stretch")
        for warning in report.warnings:
            st.warning(warning)
        if report.problems:
            n_problems = len(report.problems)
            st.error(f"{counted(n_problems, 'problem')}: nothing can be imported until "
                     f"{for_count(n_problems, 'it is', 'they are')} fixed.")
            problems = report.problems_frame()
            st.dataframe(problems, hide_index=True, width="stretch", height=320)
            st.download_button("Download the problems (CSV)", problems.to_csv(index=False).encode("utf-8"),
                               file_name="import-problems.csv", mime="text/csv")
        elif report.results:
            for line in report.summary_lines():
                st.write("✓ " + line)
            if st.button("Import", type="primary", key="do_import"):
                with st.status("Importing…", expanded=True) as status:
                    importer.write_report(engine, report, ui.current_user())
                    status.update(label="Imported", state="complete")
                # Every cached result is keyed on the version it was read at: nothing to clear, and an import of
                # workspace files alone leaves what was read from imported data warm.
                ui.pin_data_version()  # the rest of this run reads what was just imported
                st.success("Imported: " + "; ".join(report.summary_lines()))

if tab_quality.open:
    with tab_quality:
        quality = data_views.quality_table(ui.import_version())
        if quality.empty:
            st.info("No metrics or discipline rows yet: import files on the Import tab.")
        else:
            st.dataframe(ui.arrow_ready(quality), hide_index=True, width="stretch", column_config={
                "data": st.column_config.TextColumn("Data"),
                "rows": st.column_config.NumberColumn("Rows", format="localized"),
                "years": st.column_config.TextColumn("Years"),
                "missing_years": st.column_config.TextColumn("Missing years", help="Years inside the range with no rows."),
                "missing_groups": st.column_config.TextColumn("Groups with no rows"),
                "suppressed_cells": st.column_config.NumberColumn(
                    "Suppressed or missing", format="localized",
                    help="Metrics: rows without a value. Discipline: empty optional count cells."),
                "value_only_rows": st.column_config.NumberColumn(
                    "Value only (no counts)", format="localized",
                    help="Percentages without counts: shown as published, no intervals or tests; clusters and the "
                         "district use the median of school values."),
                "schools_without_data": st.column_config.NumberColumn("Schools with no rows", format="localized"),
            })
            st.caption("Counted in the database, again after every import. Suppressed cells are stored as missing, never as zero, "
                       "and are left out of pooled values.")

if tab_history.open:
    with tab_history:
        history = data_views.import_history(ui.data_version())
        if history.empty:
            st.info("No imports yet. The demo district was generated, not imported.")
        else:
            st.dataframe(ui.arrow_ready(history), hide_index=True, width="stretch")
        counts = ui.table_counts()
        st.dataframe(pd.DataFrame({"table": list(counts), "rows": list(counts.values())}), hide_index=True)

if tab_audit.open:
    with tab_audit:
        ui.audit_log_view(engine)

if tab_dictionary.open:
    with tab_dictionary:
        dictionary, dictionary_csv = data_views.dictionary_files()
        st.markdown("Every column the importer accepts, generated from the same schema it validates against. "
                    "Suppression marks (`*`, `n<10`, `<= 5.0`) in optional columns are stored as missing, never zero.")
        st.dataframe(ui.arrow_ready(dictionary), hide_index=True, width="stretch", height=480)
        st.download_button("Download the data dictionary (CSV)", dictionary_csv,
                           file_name="data-dictionary.csv", mime="text/csv")
        st.markdown("**Blank templates** (the header row of each table; fill in and import)")
        row = st.container(horizontal=True, gap="small")
        with row:
            st.download_button("All tables (Excel, one sheet each)", templates_xlsx, file_name="import-templates.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                               key="template_all", on_click="ignore")
            for name in schema.TABLES:
                st.download_button(f"{name}.csv", functools.partial(template_csv, name), file_name=f"{name}.csv", mime="text/csv",
                                   key=f"template_{name}", on_click="ignore")
