"""Reads give the same frames whichever way the rows come: PostgreSQL's CSV read (`COPY ... TO STDOUT`) against
the driver's cursor, and text lists in one byte order on SQLite and on an `en_US` PostgreSQL database."""

import math
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.data import aggregates, aggregates_discipline, bulk_write, loads, schema, storage

# Text that CSV or type inference could change: quotes, separators, line breaks, non-ASCII, numbers and
# null-like words as text, an empty string, spaces kept at the ends. Each at most 16 characters (GROUP).
TEXTS = ["O'Brien", "Zoë — ñ 日本", "2014-15", "007", "", 'a,"b"\nc', "NaN", "NULL", " x ", "C:\\new"]
INTS = [0, -7, 2147483647, None, 42, 3, -2147483648, 1, 2, 5]
FLOATS = [0.1, None, math.nan, math.inf, -math.inf, 1e-300, 1 / 3, 123456789.123, -2.5, 29.1442]
BOOLS = [True, None, False, True, False, None, True, True, False, True]
OTHER = {sa.Date: pd.Timestamp("2024-09-03").date(), sa.DateTime: pd.Timestamp("2024-09-03T10:00Z").to_pydatetime(),
         sa.LargeBinary: b"\x00\x01"}


def _value(column: sa.Column, i: int):
    """Row `i`'s value of a column: the variants above, never NULL where the column may not be."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        value = BOOLS[i]
    elif isinstance(kind, sa.Integer):
        value = INTS[i]
    elif isinstance(kind, sa.Float):
        value = FLOATS[i]
    elif isinstance(kind, sa.String):
        value = TEXTS[i]
    else:
        value = next(v for t, v in OTHER.items() if isinstance(kind, t))
    if value is None and not column.nullable:  # a value no other row has (integer keys stay unique)
        return next(v for t, v in ((sa.Boolean, False), (sa.Integer, 99), (sa.Float, 9.5)) if isinstance(kind, t))
    return value


def _same_frame(new: pd.DataFrame, old: pd.DataFrame) -> None:
    """Equal frames, down to each value's type (None is not NaN, a Python str is not a number)."""
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    for name in old.columns:
        assert (new[name].isna() == old[name].isna()).all(), name
        if old[name].dtype == object:
            assert [type(v) for v in new[name]] == [type(v) for v in old[name]], name


def _cursor_read(monkeypatch, engine, stmt) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setattr(loads, "_csv_types", lambda stmt: None)
        return loads._read(engine, stmt)


@pytest.mark.postgres
def test_postgresql_csv_read_gives_the_cursor_frame_for_every_table_and_column_type(monkeypatch, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the CSV read is PostgreSQL's")
    engine = storage.get_engine(db_url)
    tables = [t for t in schema.metadata.sorted_tables if t.name != "data_version"]
    with engine.begin() as conn:
        for name in schema.YEAR_PARTITIONED:  # a partition for each year the rows hold
            for year in {_value(schema.metadata.tables[name].c.school_year, i) for i in range(len(TEXTS))}:
                conn.exec_driver_sql(f'CREATE TABLE "{name}_{year}" PARTITION OF {name} FOR VALUES IN ({year})')
        for table in tables:
            conn.execute(sa.insert(table), [{c.name: _value(c, i) for c in table.c} for i in range(len(TEXTS))])
    copied = []
    copy_out = loads._copy_out
    monkeypatch.setattr(loads, "_copy_out", lambda *args: copied.append(1) or copy_out(*args))
    checked = 0
    for table in tables:
        plain = [c for c in table.c if loads._csv_types(sa.select(c))]
        key = next(c for c in table.c if isinstance(c.type, sa.String) and not c.nullable)
        statements = [sa.select(*plain), sa.select(*plain).where(sa.false())]
        statements += [sa.select(*plain).where(key == _value(key, i)) for i in range(len(TEXTS))]
        for stmt in statements:
            assert loads._csv_types(stmt) is not None
            _same_frame(loads._read(engine, stmt), _cursor_read(monkeypatch, engine, stmt))
            checked += 1
    assert checked == 12 * len(tables) and len(copied) == checked  # every new frame came by COPY
    # What the loaders make of it: the text as written, NULL counts as NaN, each NULL boolean as None.
    schools = loads.load_schools(engine)
    assert sorted(schools["school_name"]) == sorted(TEXTS)
    assert schools.set_index("school_id").loc["NULL", "school_name"] == "NULL"
    many = [f"unknown-{i:06d}" for i in range(40_000)] + TEXTS  # a statement larger than the socket's buffers
    pd.testing.assert_frame_equal(loads.load_schools(engine, school_ids=many), schools)
    metrics = loads.load_metrics(engine).set_index("school_id")
    assert metrics.loc["2014-15", "numerator"] == 2147483647.0 and np.isnan(metrics.loc["007", "numerator"])
    assert metrics.loc["O'Brien", "value"] == 0.1 and np.isnan(metrics.loc["2014-15", "value"])
    assert metrics.loc["", "value"] == -math.inf and metrics.loc["007", "value"] == math.inf
    assert metrics.loc["Zoë — ñ 日本", "metric"] == "Zoë — ñ 日本" and metrics.loc['a,"b"\nc', "student_group"] == 'a,"b"\nc'
    assert schools.set_index("school_id").loc["Zoë — ñ 日本", "title1"] is None


@pytest.mark.postgres
def test_a_failed_csv_read_raises_the_database_error_and_leaves_the_engine_usable(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the CSV read is PostgreSQL's")
    import psycopg

    engine = storage.get_engine(db_url)
    missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("x", sa.Integer))
    with pytest.raises(psycopg.errors.UndefinedTable):
        loads._read(engine, sa.select(missing))
    bad_cast = sa.select(sa.cast(sa.literal("x"), sa.Integer).label("n"))  # fails on the server, read by the cursor
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        loads._read(engine, bad_cast)
    with engine.begin() as conn:  # rows are sent before the division by zero in the last one fails the COPY
        conn.exec_driver_sql("CREATE VIEW failing AS SELECT CASE WHEN i < 50000 THEN i ELSE 1 / (i - i) END AS x "
                             "FROM generate_series(1, 50000) AS i")
    failing = sa.Table("failing", sa.MetaData(), sa.Column("x", sa.Integer))
    with pytest.raises(psycopg.errors.DivisionByZero):
        loads._read(engine, sa.select(failing))
    with storage.write_transaction(engine) as conn:
        bulk_write.upsert(conn, "schools", pd.DataFrame({"school_id": ["s1"], "school_name": ["One"], "level": ["ES"],
                                                         "cluster": ["North"]}))
    for _ in range(3):  # every pooled connection reads again
        assert loads.load_schools(engine)["school_id"].tolist() == ["s1"]


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


@pytest.mark.postgres
def test_a_csv_read_the_server_failed_gives_its_connection_back_and_a_half_read_one_is_replaced(monkeypatch, db_url):
    """A statement timeout (before the first row or between rows) or a query error is answered by the server
    and read to the end: the pool's one connection (same backend) reads again. A COPY stopped mid-protocol is
    not pooled again: the next read has a new backend."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the CSV read is PostgreSQL's")
    import psycopg

    with storage.get_engine(db_url).begin() as conn:  # the first row at once, the rest after a second's sleep
        conn.exec_driver_sql("CREATE VIEW slow_start AS SELECT i AS x FROM generate_series(1, 3) AS i "
                             "WHERE pg_sleep(1) IS NOT NULL")
        conn.exec_driver_sql("CREATE VIEW slow_rows AS SELECT i AS x FROM generate_series(1, 100000) AS i "
                             "WHERE i < 60000 OR pg_sleep(CASE WHEN i = 60000 THEN 1 ELSE 0 END) IS NOT NULL")
    engine = sa.create_engine(db_url, pool_size=1, max_overflow=0, pool_pre_ping=True,
                              connect_args={"options": "-c statement_timeout=300"})
    pid = _backend_pid(engine)
    for name in ("slow_start", "slow_rows"):
        view = sa.Table(name, sa.MetaData(), sa.Column("x", sa.Integer))
        with pytest.raises(psycopg.errors.QueryCanceled):
            loads._read(engine, sa.select(view))
        assert _backend_pid(engine) == pid
    missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("x", sa.Integer))
    with pytest.raises(psycopg.errors.UndefinedTable):
        loads._read(engine, sa.select(missing))
    assert _backend_pid(engine) == pid
    some = sa.Table("slow_rows", sa.MetaData(), sa.Column("x", sa.Integer))
    assert loads._read(engine, sa.select(some.c.x).where(some.c.x <= 3))["x"].tolist() == [1, 2, 3]
    assert _backend_pid(engine) == pid

    def stopped_mid_copy(driver, sql, params):  # the query sent, its rows never read
        driver.pgconn.send_query(b"COPY (SELECT generate_series(1, 100000)) TO STDOUT")
        driver.pgconn.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(loads, "_copy_out", stopped_mid_copy)
    with pytest.raises(KeyboardInterrupt):
        loads._read(engine, sa.select(some.c.x))
    monkeypatch.undo()
    assert _backend_pid(engine) != pid
    assert loads._read(engine, sa.select(some.c.x).where(some.c.x == 2))["x"].tolist() == [2]
    engine.dispose()

    # A connection lost mid-read is not pooled again: without a check before use, the next read still works.
    unchecked = sa.create_engine(db_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    pid = _backend_pid(unchecked)
    killer = threading.Timer(0.3, lambda: loads._read(storage.get_engine(db_url), sa.select(
        sa.func.pg_terminate_backend(pid).label("ended"))))
    killer.start()
    with pytest.raises(psycopg.OperationalError):
        loads._read(unchecked, sa.select(sa.Table("slow_start", sa.MetaData(), sa.Column("x", sa.Integer))))
    killer.join()
    assert _backend_pid(unchecked) != pid
    unchecked.dispose()


def test_planner_settings_hold_for_their_read_alone(db_url):
    """A read's PostgreSQL settings (``SET LOCAL``) apply to its statement, by the cursor or as CSV, and are gone
    when the pooled connection reads again; SQLite ignores them."""
    engine = storage.get_engine(db_url)
    planner = {"work_mem": "48MB", "enable_nestloop": "off"}
    if engine.dialect.name == "sqlite":
        assert loads._read(engine, sa.select(sa.literal(1).label("n")), planner=planner)["n"].tolist() == [1]
        return
    setting = sa.select(sa.func.current_setting("work_mem").label("w"), sa.func.current_setting("enable_nestloop")
                        .label("n"))
    before = loads._read(engine, setting).iloc[0].tolist()
    assert before != ["48MB", "off"]
    assert loads._read(engine, setting, planner=planner).iloc[0].tolist() == ["48MB", "off"]
    assert loads._read(engine, setting).iloc[0].tolist() == before
    with storage.write_transaction(engine) as conn:
        bulk_write.upsert(conn, "schools", pd.DataFrame({"school_id": ["s1"], "school_name": ["One"], "level": ["ES"],
                                                         "cluster": ["North"]}))
    schools = sa.select(schema.schools.c.school_id)  # plain columns: read as CSV, in the same transaction
    assert loads._csv_types(schools) is not None
    assert loads._read(engine, schools, planner=planner)["school_id"].tolist() == ["s1"]
    assert loads._read(engine, setting).iloc[0].tolist() == before


def test_casts_and_text_from_subqueries_are_read_as_csv_but_a_sum_of_a_subquery_is_not():
    m = schema.metrics
    sums = (sa.select(m.c.metric, sa.literal("x").label("tag"), sa.func.sum(m.c.numerator).label("n"))
            .group_by(m.c.metric).subquery())
    typed = loads._csv_types(sa.select(sums.c.metric, sums.c.tag, sa.cast(sums.c.n, sa.Integer).label("n")))
    assert list(typed) == ["metric", "tag", "n"]
    assert loads._csv_types(sa.select(sums.c.n)) is None  # declared Integer, PostgreSQL's numeric
    assert loads._csv_types(sa.select(sa.func.sum(m.c.numerator).label("n"))) is None
    assert loads._csv_types(aggregates_discipline.monthly_incidents_statement(["OSS"], by_school=True)) is not None


@pytest.mark.postgres
def test_casts_and_text_from_subqueries_read_as_csv_give_the_cursor_frame(monkeypatch, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the CSV read is PostgreSQL's")
    engine = storage.get_engine(db_url)
    words = sa.union_all(*[sa.select(sa.literal(text, sa.String).label("word"), sa.literal(i).label("i"))
                           for i, text in enumerate(TEXTS)]).subquery("words")
    stmt = sa.select(words.c.word, sa.cast(words.c.i * 2, sa.Integer).label("twice"),
                     sa.cast(sa.null(), sa.Float).label("nothing"),
                     sa.cast(sa.extract("month", sa.func.make_date(2024, 9, 3)), sa.Integer).label("month"))
    assert loads._csv_types(stmt) is not None
    copied = []
    copy_out = loads._copy_out
    monkeypatch.setattr(loads, "_copy_out", lambda *args: copied.append(1) or copy_out(*args))
    new = loads._read(engine, stmt)
    _same_frame(new, _cursor_read(monkeypatch, engine, stmt))
    assert copied and sorted(new["word"]) == sorted(TEXTS) and new["month"].eq(9).all()


@pytest.mark.postgres
def test_a_csv_read_of_one_column_keeps_its_null_rows(monkeypatch, db_url):
    """A row whose one column is NULL is an empty line in CSV: it is a row all the same."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the CSV read is PostgreSQL's")
    engine = storage.get_engine(db_url)
    numbers = sa.union_all(*[sa.select(sa.literal(i).label("i")) for i in range(6)]).subquery("numbers")
    stmt = sa.select(sa.cast(sa.case((numbers.c.i > 2, numbers.c.i)), sa.Integer).label("n"))
    assert loads._csv_types(stmt) is not None
    new = loads._read(engine, stmt)
    _same_frame(new, _cursor_read(monkeypatch, engine, stmt))
    assert len(new) == 6 and new["n"].isna().sum() == 3


@pytest.mark.postgres
def test_a_read_with_sums_dates_or_duplicate_names_keeps_the_cursor():
    m, s = schema.metrics, schema.schools
    assert loads._csv_types(sa.select(m.c.metric, sa.func.sum(m.c.numerator))) is None
    assert loads._csv_types(sa.select(schema.incidents)) is None  # incident_date
    assert loads._csv_types(sa.select(m.c.school_id, s.c.school_id)) is None
    assert list(loads._csv_types(sa.select(m.c.school_id, m.c.value))) == ["school_id", "value"]


# Ids and clusters whose order differs by collation: en_US puts "a-2" before "A1" (punctuation and case weigh
# last); byte order puts capitals first and "-" (0x2D) before "1" (0x31).
IDS = ["b", "a-2", "A1", "a1", "B"]
BYTE_ORDER = ["A1", "B", "a-2", "a1", "b"]


def _en_us_database(server_url: str) -> str:
    name = "ssif_test_en_us_order"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu "
                             "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def en_us_engine(request, tmp_path):
    """SQLite, and PostgreSQL on a database whose collation is American English (ICU)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'order.db'}"
    else:
        url = _en_us_database(request.getfixturevalue("postgres_server_url"))
    engine = storage.get_engine(url)
    storage.create_schema(engine)
    if request.param == "postgresql":
        with engine.connect() as conn:
            ordered = conn.execute(sa.text("SELECT x FROM (VALUES ('b'), ('a-2'), ('A1')) v(x) ORDER BY x")).scalars()
            assert list(ordered) == ["a-2", "A1", "b"]  # the database really sorts as en_US
    return engine


def test_schools_and_cluster_counts_come_in_byte_order_on_both_engines(en_us_engine):
    schools = pd.DataFrame({"school_id": IDS, "school_name": [f"School {i}" for i in IDS], "level": "ES",
                            "cluster": IDS})
    metrics = pd.DataFrame({"school_id": IDS, "school_year": 2024, "metric": "m", "student_group": "ALL",
                            "numerator": [1, 2, 3, 4, 5], "denominator": 10, "value": [10.0, 20.0, 30.0, 40.0, 50.0]})
    with storage.write_transaction(en_us_engine) as conn:
        bulk_write.upsert(conn, "schools", schools)
        bulk_write.upsert(conn, "metrics", metrics)
        storage.bump_version(conn)
    assert loads.load_schools(en_us_engine)["school_id"].tolist() == BYTE_ORDER
    assert loads.load_schools(en_us_engine).index.tolist() == [0, 1, 2, 3, 4]
    pooled = aggregates.pooled_metric_counts(en_us_engine, by_cluster=True)
    assert pooled["cluster"].tolist() == BYTE_ORDER
    assert pooled["numerator"].tolist() == [3.0, 5.0, 2.0, 4.0, 1.0]  # each cluster's own school's count
    counts = aggregates.metric_counts(en_us_engine, ["cluster", "school_year"])
    assert counts["cluster"].tolist() == BYTE_ORDER and counts.index.tolist() == [0, 1, 2, 3, 4]
