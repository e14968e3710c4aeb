"""Developer helper: `python -m analytics.data.migrations heads|current|revision -m MESSAGE`.

`revision` autogenerates the operations that bring a database at head to `schema.metadata`
(review them: they are a starting point) and chains the new file onto the current head.
"""

from __future__ import annotations

import argparse

from alembic import command

from analytics.data import migrations, storage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analytics.data.migrations")
    parser.add_argument("action", choices=["heads", "current", "revision"])
    parser.add_argument("-m", "--message", default="schema change")
    parser.add_argument("--rev-id", help="revision id, e.g. 0003 (default: generated)")
    args = parser.parse_args(argv)
    if args.action == "heads":
        print("\n".join(migrations.heads()))
        return
    engine = storage.get_engine("sqlite://") if args.action == "revision" else storage.get_engine()
    if args.action == "current":
        with engine.connect() as conn:
            print(migrations.current_revision(conn))
        return
    migrations.upgrade(engine)
    with engine.begin() as conn:
        command.revision(migrations.alembic_config(conn), message=args.message, autogenerate=True, rev_id=args.rev_id)


if __name__ == "__main__":
    main()
