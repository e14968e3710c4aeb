"""Streamlit helpers shared by every page, one module per concern.

Pages stay thin: they read the URL and widgets, call `analytics/`, and draw; anything Streamlit-specific
that two pages need lives here once. `data_versions` (the engine, the run's data versions, the guard that reruns a
page when data changes), `caching` (the caches pages put their computations in), `compact` (shared results in
little memory), the cached tables by concern (`catalog_loaders`: schools, metric catalogue, years;
`metric_loaders`: metric rows, district tables, gaps; `school_loaders`: a school's rows and profile;
`discipline_loaders`: discipline, disproportionality, incidents; `rp_loaders`: restorative-practices impact;
`workspace_loaders`: goal progress, what changed's colours and months, PL practices), `filters` (URL-bound widgets),
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
    :func:`pages.ui.data_versions.leave_legacy_run` before it reads data. Nothing is raised here: an exception
    during the import would fail the same import in sessions starting at the same moment.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False


_leave_legacy_pages_mode()

from pages.ui.audit import audit_log_view  # noqa: E402, F401
from pages.ui.caching import ahead, cached, cached_read, drawn, drawn_read, kept_read, shared  # noqa: E402, F401
from pages.ui.catalog_loaders import (  # noqa: E402, F401
    _catalog,
    _metric_groups,
    _metric_ids,
    _schools,
    _years,
    cluster_members,
    data_quality,
    higher_is_better,
    metric_catalog,
    metric_groups,
    metric_ids,
    metric_labels,
    require_data,
    school_field,
    school_names,
    schools,
    table_counts,
    tables_present,
    years,
)
from pages.ui.charts import FinishedChart, FinishedMap, chart, described, finished  # noqa: E402, F401
from pages.ui.data_versions import (  # noqa: E402, F401
    data_guard,
    data_version,
    engine,
    import_version,
    pin_data_version,
    run_page,
)
from pages.ui.discipline_loaders import (  # noqa: E402, F401
    _discipline,
    discipline,
    discipline_choices,
    discipline_group_rates,
    discipline_sums,
    incident_months,
    prepared_flags,
    suspension_run_chart,
    year_flags_and_ratios,
    year_flags_and_ratios_ahead,
)
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
from pages.ui.metric_loaders import (  # noqa: E402, F401
    _metric_rows,
    _year_rows,
    cluster_slice,
    district_all_counts,
    district_figures,
    district_tables,
    gap_grid,
    gap_trend,
    gap_trend_ahead,
    gap_year_views,
    metric_counts,
    metric_rows,
    metric_slice,
    year_rows,
)
from pages.ui.prepare import cluster_areas, import_after_pages, page_in_progress, prepare_ahead, serving  # noqa: E402, F401
from pages.ui.rp_loaders import has_rp_start, rp_ahead, rp_beyond, rp_impact_of  # noqa: E402, F401
from pages.ui.school_loaders import _school_metrics, school_metrics, school_profile_of  # noqa: E402, F401
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
from pages.ui.workspace_loaders import (  # noqa: E402, F401
    colours_at,
    goal_progress_at,
    goal_progress_of,
    pl_practices,
    prepared_school_months,
)
