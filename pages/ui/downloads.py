"""Download menus: CSV, Excel and chart images of what is on screen, made only when clicked."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def download_menu(name: str, table: pd.DataFrame, chart=None) -> None:
    """CSV, XLSX and (for a chart) PNG/SVG of what is on screen; files are made only when clicked.

    Viewers get the privacy-suppressed table they see; text cells are neutralised against formula
    injection in every format.
    """
    from analytics.outputs.exports import chart_bytes, to_csv_bytes, to_xlsx_bytes

    with st.popover("Download", icon=":material/download:"):
        st.download_button("Table (CSV)", lambda: to_csv_bytes(table), file_name=f"{name}.csv", mime="text/csv",
                           key=f"dl_csv_{name}", on_click="ignore")
        st.download_button("Table (Excel)", lambda: to_xlsx_bytes(table, name), file_name=f"{name}.xlsx",
                           key=f"dl_xlsx_{name}", on_click="ignore",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if chart is not None:
            st.download_button("Chart (PNG)", lambda: chart_bytes(chart, "png", scale=3), file_name=f"{name}.png",
                               mime="image/png", key=f"dl_png_{name}", on_click="ignore")
            st.download_button("Chart (SVG)", lambda: chart_bytes(chart, "svg"), file_name=f"{name}.svg",
                               mime="image/svg+xml", key=f"dl_svg_{name}", on_click="ignore")
