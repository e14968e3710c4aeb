"""Streamlit helpers shared by every page, one module per concern.

Pages stay thin: they read the URL and widgets, call `analytics/`, and draw; anything Streamlit-specific
that two pages need lives here once. `loaders` (engine, cached tables), `filters` (URL-bound widgets),
`links` (navigation), `state` (shared-link session), `viewer` (read-only view), `staff` (sign-in, Share),
`downloads` (download menus), `audit` (the audit log on /data), `data_views` (the Data page's tables),
`school_views` (a school's opening view), `charts` and `tables` (drawing), `rp_views` (restorative-practice
views), `workspace` (editing plans and cycles), `prepare` (computing ahead after an import).
Pages use them through this package: ``from pages import ui``.
"""

from __future__ import annotations

from analytics.outputs.findings import format_p as fmt_p  # noqa: F401 - re-exported for pages


def _leave_legacy_pages_mode() -> None:
    """Never serve `pages/*.py` as legacy multipage scripts.

    Streamlit starts an app that has a `pages/` folder in its legacy mode until `st.navigation` has
    run once; a deep link opened first after a restart would then run a page script without the shell
    in app.py (and so without its shared-link and sign-in checks). The first import of this module
    switches the process to `st.navigation` mode; any run that began in legacy mode is rerun by
    :func:`pages.ui.loaders.leave_legacy_run` before it reads data. Nothing is raised here: an exception
    during the import would fail the same import in sessions starting at the same moment.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False


_leave_legacy_pages_mode()

from pages.ui.audit import audit_log_view  # noqa: E402, F401
from pages.ui.charts import FinishedChart, FinishedMap, chart, described, finished  # noqa: E402, F401
from pages.ui.downloads import download_menu  # noqa: E402, F401
from pages.ui.filters import _within_scope, filter_bar, fmt_pct, metric_label, rate_text, url_choice, year_label  # noqa: E402, F401
from pages.ui.links import (  # noqa: E402, F401
    PAGE_PATHS,
    _md_escape,
    app_base_url,
    breadcrumb,
    go,
    link,
    link_row,
    not_found,
    page_url,
)
from pages.ui.loaders import (  # noqa: E402, F401
    _catalog,
    _discipline,
    _metric_groups,
    _metric_ids,
    _metric_rows,
    _school_metrics,
    _schools,
    _year_rows,
    _years,
    ahead,
    cached,
    cached_read,
    cluster_members,
    cluster_slice,
    colours_at,
    data_guard,
    data_quality,
    data_version,
    discipline,
    discipline_choices,
    discipline_group_rates,
    discipline_sums,
    district_all_counts,
    district_figures,
    district_tables,
    drawn,
    drawn_read,
    engine,
    gap_grid,
    gap_trend,
    gap_trend_ahead,
    gap_year_views,
    goal_progress_at,
    goal_progress_of,
    has_rp_start,
    higher_is_better,
    import_version,
    incident_months,
    kept_read,
    metric_catalog,
    metric_counts,
    metric_groups,
    metric_ids,
    metric_labels,
    metric_rows,
    metric_slice,
    pin_data_version,
    pl_practices,
    prepared_flags,
    prepared_school_months,
    require_data,
    rp_ahead,
    rp_beyond,
    rp_impact_of,
    run_page,
    school_field,
    school_metrics,
    school_names,
    school_profile_of,
    schools,
    shared,
    suspension_run_chart,
    table_counts,
    tables_present,
    year_flags_and_ratios,
    year_flags_and_ratios_ahead,
    year_rows,
    years,
)
from pages.ui.prepare import cluster_areas, import_after_pages, page_in_progress, prepare_ahead, serving  # noqa: E402, F401
from pages.ui.school_views import opening_views  # noqa: E402, F401
from pages.ui.staff import (  # noqa: E402, F401
    _default_scope,
    can_edit,
    current_role,
    current_user,
    editors_only,
    secrets_section,
    share_button,
    staff_role,
)
from pages.ui.state import _with_share, arrived_on_page, is_public, note_page, per_run, share_grant, share_token  # noqa: E402, F401
from pages.ui.tables import arrow_ready, filled, no_none, text_columns, year_label_of  # noqa: E402, F401
from pages.ui.viewer import (  # noqa: E402, F401
    _cell_text,
    as_shown,
    cell_states,
    exact_cells,
    open_share,
    public_cells,
    public_table,
    public_view,
    release,
    released_pct,
    scope_label,
    viewer_banner,
    viewer_nav,
    withheld_notice,
)
from pages.ui.workspace import (  # noqa: E402, F401
    conflict_actions,
    conflict_panel,
    delete_record,
    forget,
    goal_words,
    record_history,
    seen_version,
    store_record,
)
