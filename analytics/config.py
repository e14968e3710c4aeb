"""Settings: every analytic default in one place, and where the database lives.

Defaults follow DESIGN §3 (IDEA 34 CFR 300.647 for disproportionality, the California
School Dashboard 5x5 grid for status and change, n < 10 suppression for anything public).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "ssif.db"
SECRETS_PATH = PROJECT_ROOT / ".streamlit" / "secrets.toml"


@dataclass(frozen=True)
class StatusCuts:
    """Cut points for one metric's 5x5 status-and-change grid.

    ``status`` holds the four upper bounds of Very Low, Low, Medium and High (a value above
    the last is Very High). ``change`` holds the four bounds of Declined significantly,
    Declined, Increased and Increased significantly, as in the California School Dashboard:
    change <= c0 is Declined significantly, <= c1 Declined, < c2 Maintained, <= c3 Increased
    (that is, >= c2), > c3 Increased significantly.
    """

    status: tuple[float, float, float, float]
    change: tuple[float, float, float, float]


# California School Dashboard suspension-rate cut points, elementary (DESIGN §3).
SUSPENSION_ES_CUTS = StatusCuts(status=(0.5, 1.0, 3.0, 6.0), change=(-1.0, -0.3, 0.3, 2.0))
# Middle and high schools suspend more; these wider bands are modelled on the Dashboard's secondary
# cut points and are configurable like every other default.
SUSPENSION_MS_CUTS = StatusCuts(status=(0.5, 2.0, 8.0, 12.0), change=(-2.0, -0.3, 0.3, 2.0))
SUSPENSION_HS_CUTS = StatusCuts(status=(0.5, 1.5, 6.0, 10.0), change=(-1.0, -0.3, 0.3, 2.0))
# Chronic absence (lower is better), modelled on the Dashboard's chronic-absenteeism bands.
CHRONIC_ABSENCE_CUTS = StatusCuts(status=(2.5, 5.0, 10.0, 20.0), change=(-3.0, -0.5, 0.5, 3.0))
# Percent meeting a standard (higher is better): generic bands for proficiency, growth and courses.
PERCENT_MET_CUTS = StatusCuts(status=(20.0, 35.0, 50.0, 65.0), change=(-5.0, -1.0, 1.0, 5.0))


def _default_cuts() -> dict[tuple[str, str], StatusCuts]:
    cuts = {("suspension_rate", "ES"): SUSPENSION_ES_CUTS, ("suspension_rate", "MS"): SUSPENSION_MS_CUTS,
            ("suspension_rate", "HS"): SUSPENSION_HS_CUTS, ("chronic_absence", "ES"): CHRONIC_ABSENCE_CUTS}
    for metric in ("read_proficient", "math_proficient", "ela_growth", "math_growth", "algebra1_by_grade8",
                   "grade9_english_c", "grade9_math_c", "student_engagement"):
        cuts[(metric, "ES")] = PERCENT_MET_CUTS
    cuts[("grad_rate_4yr", "ES")] = StatusCuts(status=(67.0, 80.0, 90.5, 95.0), change=(-5.0, -1.0, 1.0, 5.0))
    cuts[("attendance_rate", "ES")] = StatusCuts(status=(88.0, 91.0, 94.0, 96.0), change=(-2.0, -0.5, 0.5, 2.0))
    return cuts


@dataclass(frozen=True)
class Settings:
    """Analytic defaults. Construct with keyword overrides to change any of them."""

    # Disproportionality (34 CFR 300.647)
    n_size: int = 30
    cell_size: int = 10
    risk_ratio_threshold: float = 3.0
    consecutive_years: int = 3
    # Privacy for anything that leaves editing staff
    privacy_min_n: int = 10
    privacy_low_pct: float = 5.0
    privacy_high_pct: float = 95.0
    # Status and change
    status_min_n: int = 30
    status_cuts: dict[tuple[str, str], StatusCuts] = field(default_factory=_default_cuts)
    # Significance level for a "significant change" (gap labels use FDR control: analytics.stats.gaps.FDR_Q)
    alpha: float = 0.05
    # Import size limit (bytes)
    max_upload_bytes: int = 50 * 1024 * 1024
    # Bootstrap replicates for the RP impact interval
    bootstrap_resamples: int = 999
    # Start-year reassignments for randomization inference (all of them when there are fewer)
    permutations: int = 1999
    random_seed: int = 20240601

    def cuts_for(self, metric: str, level: str) -> StatusCuts | None:
        """Cut points for a metric at a school level; falls back to the metric's ES cuts."""
        return self.status_cuts.get((metric, level)) or self.status_cuts.get((metric, "ES"))


DEFAULT_SETTINGS = Settings()


def _secrets() -> dict:
    if not SECRETS_PATH.exists():
        return {}
    with SECRETS_PATH.open("rb") as fh:
        return tomllib.load(fh)


def secrets_section(*path: str) -> dict:
    """A nested section of `.streamlit/secrets.toml` (empty when absent)."""
    section: object = _secrets()
    for key in path:
        if not isinstance(section, dict):
            return {}
        section = section.get(key, {})
    return section if isinstance(section, dict) else {}


def database_url() -> str:
    """`DATABASE_URL`, else `[connections.ssif]` in secrets.toml, else the embedded SQLite file."""
    env = os.environ.get("DATABASE_URL", "").strip()
    if env:
        return env
    conn = secrets_section("connections", "ssif")
    if conn.get("url"):
        return str(conn["url"])
    if conn.get("dialect"):
        from sqlalchemy.engine import URL

        return URL.create(
            drivername=f"{conn['dialect']}+{conn['driver']}" if conn.get("driver") else conn["dialect"],
            username=conn.get("username"),
            password=conn.get("password"),
            host=conn.get("host"),
            port=conn.get("port"),
            database=conn.get("database"),
        ).render_as_string(hide_password=False)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


@dataclass(frozen=True)
class ServerSettings:
    """Connection pool and timeouts for many sessions at once (environment variables override)."""

    pool_size: int = 10  # SSIF_POOL_SIZE
    max_overflow: int = 20  # SSIF_POOL_OVERFLOW
    statement_timeout_s: float = 60.0  # SSIF_STATEMENT_TIMEOUT_S: no query may hold a connection longer
    lock_wait_s: float = 120.0  # SSIF_LOCK_WAIT_S: how long an import waits for another one to finish
    write_timeout_s: float = 1800.0  # SSIF_WRITE_TIMEOUT_S: a statement of an import or demo write (bulk COPY)


def server_settings() -> ServerSettings:
    env = os.environ
    return ServerSettings(
        pool_size=int(env.get("SSIF_POOL_SIZE", ServerSettings.pool_size)),
        max_overflow=int(env.get("SSIF_POOL_OVERFLOW", ServerSettings.max_overflow)),
        statement_timeout_s=float(env.get("SSIF_STATEMENT_TIMEOUT_S", ServerSettings.statement_timeout_s)),
        lock_wait_s=float(env.get("SSIF_LOCK_WAIT_S", ServerSettings.lock_wait_s)),
        write_timeout_s=float(env.get("SSIF_WRITE_TIMEOUT_S", ServerSettings.write_timeout_s)),
    )


def max_upload_bytes() -> int:
    """Import size limit: `SSIF_MAX_UPLOAD_MB` overrides the default of 50 MB."""
    env = os.environ.get("SSIF_MAX_UPLOAD_MB", "").strip()
    if env:
        return int(float(env) * 1024 * 1024)
    return DEFAULT_SETTINGS.max_upload_bytes


def map_style() -> str | None:
    """The basemap style URL for the district map: `SSIF_MAP_STYLE`, else `[map] style` in secrets.toml.

    None by default: the map then draws cluster areas only and needs nothing from the network.
    """
    env = os.environ.get("SSIF_MAP_STYLE", "").strip()
    if env:
        return env
    style = secrets_section("map").get("style")
    return str(style) if style else None
