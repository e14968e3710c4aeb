"""What a server's first page imports: the statistics and chart libraries are imported where they are needed.

scipy.stats takes 1-3 s to import and Altair 0.5-2 s, and the first run of the app imports the pages' shared
modules before it draws anything (the first paint of `/` at 10,000 schools waits on them). Each check runs in a new interpreter, so
modules imported by other tests do not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The shared modules and what `/` and `/gaps` import before they draw.
FIRST_PAGE_MODULES = [
    "pages.ui", "analytics.access.sharing", "analytics.config", "analytics.data.catalog", "analytics.data.prepare",
    "analytics.outputs.charts_district", "analytics.outputs.charts_equity", "analytics.outputs.labels",
    "analytics.stats.summaries", "analytics.stats.gaps", "analytics.access.privacy",
]


def _run_python(code: str) -> str:
    """What `code` prints, run in a new interpreter that has imported nothing of the app."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}).stdout


def _imported_after(modules: list[str]) -> list[str]:
    code = (f"import json, sys\nfor name in {modules!r}:\n    __import__(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    stdout = _run_python(code)
    return json.loads(stdout.strip().splitlines()[-1])


def test_first_page_modules_import_no_statistics_library():
    loaded = _imported_after(FIRST_PAGE_MODULES)
    assert "pages.ui" in loaded and "analytics.stats.rates" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in ("scipy", "statsmodels")]
    assert heavy == []


def test_overview_kpis_import_no_chart_library():
    """Altair and pydeck come with the first chart (the overview imports its charts below its KPIs)."""
    loaded = _imported_after(["pages.ui", "analytics.access.sharing", "analytics.background_imports",
                              "analytics.config", "analytics.data.catalog", "analytics.stats.summaries"])
    assert [m for m in loaded if m.split(".")[0] in ("altair", "pydeck", "scipy")] == []


def test_statistics_import_when_a_function_needs_them():
    """The functions still work from a bare import: scipy.stats arrives with the first call."""
    code = ("import sys\nfrom analytics.stats import rates\nassert 'scipy.stats' not in sys.modules\n"
            "print(round(rates.two_proportion_test(30, 100, 50, 100), 6), 'scipy.stats' in sys.modules)")
    stdout = _run_python(code)
    # z = (0.3 - 0.5) / sqrt(0.4 * 0.6 * (1/100 + 1/100)) = -2.886751; p = 2 * (1 - Phi(2.886751)) = 0.003892
    assert stdout.split() == ["0.003892", "True"]


def test_wilson_intervals_import_no_scipy_stats():
    """The learning page's first figure (level 1's Wilson intervals) does not wait for scipy.stats: its normal
    quantile is the one scipy.stats.norm.ppf gives, to the last digit."""
    code = ("import sys\nimport numpy as np\nfrom analytics.stats import rates\n"
            "rates.wilson_arrays(np.array([5.0, 37.0]), np.array([10.0, 41.0]))\n"
            "print('scipy.stats' in sys.modules, repr(float(rates._z(0.95))), repr(float(rates._z(0.9))))\n"
            "from scipy import stats\nprint(repr(float(stats.norm.ppf(0.975))), repr(float(stats.norm.ppf(0.95))))")
    stdout = _run_python(code)
    first, scipy_says = stdout.splitlines()[-2:]
    loaded, quantiles = first.split(maxsplit=1)
    assert loaded == "False"
    assert quantiles == scipy_says


def test_import_ahead_imports_once_in_the_background():
    """A server starts one thread that imports the modules in turn; a module that fails is skipped."""
    code = ("import sys\nfrom analytics.background_imports import import_ahead\n"
            "assert 'colorsys' not in sys.modules\n"
            "thread = import_ahead(['no_such_module_here', 'colorsys'])\n"
            "assert import_ahead(['wave']) is thread\nthread.join(30)\n"
            "print(thread.name, thread.daemon, 'colorsys' in sys.modules, 'wave' in sys.modules)")
    stdout = _run_python(code)
    assert stdout.split() == ["ssif-imports", "True", "True", "False"]


def test_import_ahead_begins_once_its_after_returns():
    """A server's imports wait for its first page (`after`: the page drawn and the grace after it)."""
    code = ("import sys, threading\nfrom analytics.background_imports import import_ahead\n"
            "go = threading.Event()\nthread = import_ahead(['colorsys'], after=go.wait)\n"
            "thread.join(0.3)\nbefore = 'colorsys' in sys.modules\ngo.set()\nthread.join(30)\n"
            "print(before, 'colorsys' in sys.modules)")
    stdout = _run_python(code)
    assert stdout.split() == ["False", "True"]
