"""`python serve.py [Streamlit options]`: the dashboard as a server, what its pages import loaded before it listens.

The same as `streamlit run app.py [Streamlit options]`, except that the app's modules and the analysis libraries
its pages use are imported first. Under `streamlit run app.py` they are imported on the first request (the app's
own modules half a second, scipy.stats about a second, Altair a third of one), so whoever opens a link first after
the server starts waits for them.
"""

import importlib
import sys
from pathlib import Path

# The analytics core the app's shell and helpers import (with it pandas and SQLAlchemy; tests/test_serve.py checks
# that it is all of it), the charts and the migrations, then what pages leave to their first chart or test. Not
# `pages.ui`: its caches must be made once Streamlit's runtime is.
APP_CORE = (
    "analytics.access.audit", "analytics.access.deployment", "analytics.access.sharing", "analytics.background_imports",
    "analytics.data.aggregates", "analytics.data.kept", "analytics.data.prepare", "analytics.data.quality",
    "analytics.data.migrations", "analytics.learning.outcomes", "analytics.outputs.findings",
    "analytics.outputs.school_view", "analytics.outputs.charts_district", "analytics.outputs.charts_equity",
    "analytics.stats.rp_impact", "analytics.stats.small_numbers", "analytics.stats.summaries")


def startup_imports() -> tuple[str, ...]:
    from analytics.background_imports import SLOW_LIBRARIES

    return (*APP_CORE, *SLOW_LIBRARIES)


def import_ahead_of_requests() -> None:
    for name in startup_imports():
        importlib.import_module(name)


def main() -> None:
    from streamlit.web import cli

    if not {"-h", "--help"} & set(sys.argv[1:]):  # help is printed at once
        import_ahead_of_requests()
    sys.argv = ["streamlit", "run", str(Path(__file__).with_name("app.py")), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
