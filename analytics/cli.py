"""Command line: `python -m analytics demo | import | info | export | share | revoke` (DESIGN §7).

Each command is a small function that parses nothing itself and delegates to the module that owns
the concept (demo, importer, views/exports, sharing).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from analytics.access import audit
from analytics.data import loads, storage
from analytics.outputs.labels import counted


def _engine():
    return storage.ensure_database(seed_demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from analytics.data.demo import load_demo

    engine = _engine()
    started = time.perf_counter()

    def progress(message: str) -> None:  # on stderr, so stdout keeps its summary
        print(f"demo: {message} ({time.perf_counter() - started:.0f} s so far)", file=sys.stderr, flush=True)

    counts = load_demo(engine, schools=args.schools, years=args.years, seed=args.seed, rp_effect=args.rp_effect,
                       pl_effect=args.pl_effect, progress=progress)
    progress("done")
    print(f"demo district written to {engine.url.render_as_string(hide_password=True)}", flush=True)
    for table, n in counts.items():
        print(f"  {table}: {counted(n, 'row')}", flush=True)
    if not args.no_keep_ahead:
        _keep_ahead(engine, "demo")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from analytics.data.importer import import_files
    from analytics.outputs.labels import counted

    engine = _engine()
    report = import_files(engine, [Path(p) for p in args.files], table=args.table, who=_who())
    if not report.ok:
        for problem in report.problems:
            print(problem.format(), file=sys.stderr)
        print(f"nothing imported: {counted(len(report.problems), 'problem')}", file=sys.stderr)
        return 1
    for line in report.summary_lines():
        print(line, flush=True)
    if not args.no_keep_ahead:
        _keep_ahead(engine, "import")
    return 0


def _keep_ahead(engine, command: str) -> None:
    """After the command's answer is printed: keep What changed's opening view for the new data, so the
    dashboard's first view reads it (:mod:`analytics.workspace.ahead`). Progress goes to stderr; a failure here
    is reported and leaves the exit status alone (the data is written, and a page finds the list itself)."""
    try:
        from analytics.workspace.ahead import can_keep_for_pages, district_since, keep_district_changes

        since = district_since(engine)
        if since is None:
            return
        if not can_keep_for_pages():
            print(f"{command}: the app's pages are not beside this installation: the dashboard finds what changed "
                  "on its first view", file=sys.stderr)
            return
        print(f"{command}: finding what changed since the district's meeting of {since:%d %b %Y}, for the "
              "dashboard's first view (the data is written; Ctrl-C stops this)…", file=sys.stderr, flush=True)
        done = keep_district_changes(engine, since)
    except KeyboardInterrupt:
        print(f"{command}: stopped; the dashboard finds what changed on its first view", file=sys.stderr)
        return
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the command's own work is done and reported
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{command}: what changed was not kept ({type(exc).__name__}: {reason}); the dashboard finds it on "
              "its first view", file=sys.stderr)
        return
    if done is None:
        print(f"{command}: what changed is already kept for this data", file=sys.stderr)
    elif done.kept:
        print(f"{command}: what changed kept ({counted(done.rows, 'row')}, {done.seconds:.1f} s)", file=sys.stderr)
    elif storage.data_version(engine) != done.version:
        print(f"{command}: the data changed meanwhile; the dashboard finds what changed on its first view",
              file=sys.stderr)
    else:
        print(f"{command}: what changed could not be kept (the database was busy with a write, or cannot be written "
              "by this role); the dashboard finds it on its first view", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> int:
    engine = _engine()
    imports = loads.load_imports(engine)
    payload = {
        "tables": loads.table_counts(engine),
        "years": loads.available_years(engine),
        "imports": json.loads(imports.to_json(orient="records", date_format="iso")) if not imports.empty else [],
        "audit": audit.counts(engine),
        "data_version": storage.data_version(engine),
        "database": engine.url.render_as_string(hide_password=True),
    }
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(f"database: {payload['database']}")
        for table, n in payload["tables"].items():
            print(f"  {table}: {counted(n, 'row')}")
        print(f"years: {', '.join(map(str, payload['years'])) or 'none'}")
        print(f"imports recorded: {len(payload['imports'])}")
        print(f"audit events: {payload['audit']['total']:,}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from analytics.outputs.exports import export_command

    return export_command(_engine(), args)


def cmd_share(args: argparse.Namespace) -> int:
    from analytics.access.sharing import share_command

    return share_command(_engine(), args)


def cmd_revoke(args: argparse.Namespace) -> int:
    from analytics.access.sharing import revoke_command

    return revoke_command(_engine(), args)


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


KEEP_AHEAD_HELP = ("do not find What changed since the district's last meeting for the dashboard's first view once "
                   "the data is written (e.g. when more imports follow at once; the dashboard then finds it itself)")

# What `export` writes: the views of the README's export table (analytics.outputs.views.VIEWS, not imported here:
# every command would pay for it), and the whole meeting pack.
EXPORTS = "rates, gaps, status-change, disproportionality, rp-impact, run-chart, learning, goals, changes or meeting"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics",
        description="The dashboard's command line (the README's \"Command line\" section): the demo district, "
                    "imports, what the database holds, exports of views and meeting packs, read-only links. The "
                    "database is DATABASE_URL, else [connections.ssif] in .streamlit/secrets.toml, else data/ssif.db.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="(re)create the demo district: every data and workspace table is replaced")
    demo.add_argument("--schools", type=int, default=200, help="schools (default 200)")
    demo.add_argument("--years", type=int, default=6, help="school years (default 6)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--rp-effect", type=float, default=1.5,
                      help="percentage points RP schools cut suspensions by (default 1.5; 0: no effect)")
    demo.add_argument("--pl-effect", type=float, default=3.0,
                      help="percentage points PL programmes raise their goal metric by (default 3; 0: no effect)")
    demo.add_argument("--no-keep-ahead", action="store_true", help=KEEP_AHEAD_HELP)
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="import CSV/XLSX files (all-or-nothing)")
    imp.add_argument("files", nargs="+", help="CSV or XLSX files; exit 1 with every problem and nothing changed")
    imp.add_argument("--no-keep-ahead", action="store_true", help=KEEP_AHEAD_HELP)
    imp.add_argument("--table", default=None,
                     help="the table of every file (default: the sheet's or the file's name, e.g. schools.csv)")
    imp.set_defaults(func=cmd_import)

    info = sub.add_parser("info", help="table counts, years, import history and audit-log counts")
    info.add_argument("--json", action="store_true", help="print them as JSON")
    info.set_defaults(func=cmd_info)

    exp = sub.add_parser("export", help="export a view's table or chart, or the meeting pack")
    exp.add_argument("view", help=EXPORTS)
    exp.add_argument("--year", type=int)
    exp.add_argument("--cluster")
    exp.add_argument("--school")
    exp.add_argument("--metric", help="the view's metric (meeting: the pack's, default read_proficient)")
    exp.add_argument("--group")
    exp.add_argument("--program", help="a professional-learning programme (export learning)")
    exp.add_argument("--since", help="changes: the meeting date to count from (YYYY-MM-DD; default the last one "
                                     "recorded for the scope)")
    exp.add_argument("--public", action="store_true", help="apply the privacy rules")
    exp.add_argument("-o", "--output", help="FILE.csv (default: CSV on stdout), .xlsx, or .png / .svg for the view's "
                                            "chart; meeting: FILE.xlsx, .pptx or .zip")
    exp.set_defaults(func=cmd_export)

    share = sub.add_parser("share", help="print a read-only link for a view")
    share.add_argument("url", help="the view's URL (a bare path follows SSIF_BASE_URL)")
    share.add_argument("--scope", required=True, help="district | cluster:NAME | school:ID")
    share.add_argument("--expires-days", type=float, default=30.0, help="days the link works (> 0; default 30)")
    share.add_argument("--note", default="", help="a note kept with the link")
    share.set_defaults(func=cmd_share)

    revoke = sub.add_parser("revoke", help="end a shared link")
    revoke.add_argument("token", help="the link's token (its share parameter) or token id")
    revoke.set_defaults(func=cmd_revoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a clear message, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
