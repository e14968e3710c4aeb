"""School Support & Improvement Dashboard: navigation shell (URL paths are DESIGN §4's).

Three ways in: a read-only shared link (`share=` in the URL: only views inside its scope, privacy rules
on, nothing to edit), a signed-in member of staff when sign-in is configured, or a local single editor.
A server without sign-in configured serves no staff page at all (`ui.staff_role`, DESIGN §11).
"""

import streamlit as st

from analytics.access.sharing import SCOPED_PAGES
from analytics.background_imports import SLOW_LIBRARIES
from pages import ui

st.set_page_config(page_title="School Support & Improvement", page_icon=":material/school:", layout="wide")

BROWSE = [
    st.Page("pages/overview.py", title="District overview", icon=":material/map:", default=True),
    st.Page("pages/cluster.py", title="Cluster", icon=":material/hub:", url_path="cluster"),
    st.Page("pages/school.py", title="School", icon=":material/school:", url_path="school"),
]
EQUITY = [
    st.Page("pages/gaps.py", title="Growth gaps", icon=":material/stacked_line_chart:", url_path="gaps"),
    st.Page("pages/discipline.py", title="Discipline", icon=":material/gavel:", url_path="discipline"),
]
LEARNING = [
    st.Page("pages/learning.py", title="Professional learning", icon=":material/model_training:", url_path="learning"),
]
MEETING = [
    st.Page("pages/meeting.py", title="Data-meeting pack", icon=":material/slideshow:", url_path="meeting"),
    st.Page("pages/changes.py", title="What changed", icon=":material/notifications:", url_path="changes"),
]
IMPROVE = [
    st.Page("pages/plans.py", title="School plans", icon=":material/flag:", url_path="plans"),
    st.Page("pages/cycles.py", title="PDSA cycles", icon=":material/autorenew:", url_path="cycles"),
]
MANAGE = [
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:", url_path="data"),
]
EVERY_PAGE = BROWSE + EQUITY + LEARNING + MEETING + IMPROVE + MANAGE

# The whole run, the shell's reads included, is a page run: the preparer, told of the version first, starts no
# piece before it ends and a moment after (`prepare.GRACE_S`).
with ui.page_in_progress():
    # On a server, what pages leave to their first chart or test is imported once this page has been drawn.
    ui.import_after_pages(SLOW_LIBRARIES)
    ui.prepare_ahead(ui.pin_data_version())
    # What the shell reads before the page (a shared link's scope is checked against the district's schools) is
    # guarded as the page is: an import landing meanwhile runs the script again on the new data.
    with ui.data_guard():
        token = ui.share_token()
        if token:
            grant, problem = ui.open_share(token)
            if problem:
                st.title("Shared link")
                st.error(problem, icon=":material/link_off:")
                st.stop()
            # Every page stays registered (so URLs resolve the same way and one outside the link's scope gets the
            # refusal below, not Streamlit's "Page not found"); the sidebar shows only in-scope links, each
            # carrying the token.
            page = st.navigation(EVERY_PAGE, position="hidden")
            ui.viewer_nav(grant, SCOPED_PAGES[grant.kind])
            ok, reason = grant.allows(page.url_path, dict(st.query_params), ui.schools())
            if page.url_path == "data":
                ok, reason = False, "This shared link is read-only: the Data page is for the dashboard's editors only."
            if not ok:
                st.title("Shared link")
                st.error(reason, icon=":material/block:")
                st.markdown(f"[Back to the shared view]({grant.view.lstrip('/') or '.'}"
                            f"{'&' if '?' in grant.view else '?'}share={token})")
                st.stop()
            slot = ui.viewer_banner(grant)
            ui.note_page(page.url_path)
            ui.run_page(page, after=lambda: ui.withheld_notice(slot))
        else:
            role = ui.staff_role([p.url_path for p in EVERY_PAGE])
            sections = {"Browse": BROWSE, "Equity": EQUITY, "Improvement": IMPROVE, "Learning": LEARNING,
                        "Meetings": MEETING}
            if role == "editor":
                sections["Manage"] = MANAGE
            else:  # /data stays a known address (hidden): a viewer who follows a link to it is told it is for editors
                sections["Meetings"] = MEETING + [st.Page(ui.editors_only, title="Data", url_path="data",
                                                          visibility="hidden")]
            page = st.navigation(sections)
            if role == "editor":
                with st.sidebar:
                    ui.share_button(page.url_path)
            ui.note_page(page.url_path)
            ui.run_page(page)
