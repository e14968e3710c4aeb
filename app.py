"""School Support & Improvement Dashboard: navigation shell (URL paths are DESIGN §4's)."""

import streamlit as st

st.set_page_config(page_title="School Support & Improvement", page_icon=":material/school:", layout="wide")

PAGES = {
    "Browse": [
        st.Page("pages/overview.py", title="District overview", icon=":material/map:", default=True),
        st.Page("pages/cluster.py", title="Cluster", icon=":material/hub:", url_path="cluster"),
        st.Page("pages/school.py", title="School", icon=":material/school:", url_path="school"),
    ],
    "Equity": [
        st.Page("pages/gaps.py", title="Growth gaps", icon=":material/stacked_line_chart:", url_path="gaps"),
        st.Page("pages/discipline.py", title="Discipline", icon=":material/gavel:", url_path="discipline"),
    ],
    "Manage": [
        st.Page("pages/data.py", title="Data", icon=":material/upload_file:", url_path="data"),
    ],
}

st.navigation(PAGES).run()
