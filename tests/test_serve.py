"""`serve.py`, the README's server command: what it imports before the server listens is the whole analytics
core the app's shell imports, and none of the app's own Streamlit modules (their caches need the runtime)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    """The modules loaded in a new interpreter once `code` has run."""
    shown = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                           cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(shown.stdout.splitlines()[-1]))


def test_serve_imports_every_analytics_module_the_shell_needs_and_no_page_module():
    shell = _modules_after("import pages.ui")
    ahead = _modules_after("import serve\nserve.import_ahead_of_requests()")
    wanted = {name for name in shell if name.startswith("analytics")}
    assert wanted and wanted <= ahead
    assert {"scipy.stats", "altair", "pydeck"} <= ahead
    assert not {name for name in ahead if name == "pages" or name.startswith("pages.")}
    assert not {name for name in ahead if name.startswith("streamlit.runtime.caching")}
    assert "analytics.__main__" not in ahead and "analytics.data.migrations.env" not in ahead
