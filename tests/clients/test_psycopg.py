"""psycopg (the PostgreSQL driver for Python) against `sluice serve`'s PostgreSQL endpoint.

    python3 tests/clients/test_psycopg.py --pg HOST:PORT

Creates a topic table, inserts rows with bound parameters (the extended query protocol,
as psycopg sends them), reads them back with a parameterised query, checks that a bad
statement comes back as a PostgreSQL error with a SQLSTATE, and that the connection
still works after it; then psycopg's default transactional connection (BEGIN before the
first statement) and what a BI tool sends on connect and to list tables and columns (SET
extra_float_digits, SHOW server_version, current_schema(), information_schema and
pg_catalog), psql's describe queries, and SQLAlchemy's reflection when sqlalchemy is
installed. Prints `psycopg: passed=N failed=N` last; exits non-zero on failure.
"""

import argparse
import sys

import psycopg

try:
    import sqlalchemy
except ImportError:  # optional: the reflection check is skipped without it
    sqlalchemy = None

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        print(f"ok    psycopg: {name}")
        passed += 1
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        print(f"FAIL  psycopg: {name}: {e!r}")
        failed += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", required=True)
    args = parser.parse_args()
    host, port = args.pg.rsplit(":", 1)
    conn = psycopg.connect(host=host, port=int(port), user="sluice", dbname="sluice", autocommit=True)

    def create_and_insert():
        conn.execute(
            "CREATE TABLE py_orders (id BIGINT, customer VARCHAR, amount DOUBLE) "
            "WITH (topic = 'py-orders', format = 'json')"
        )
        for i, (customer, amount) in enumerate([("ada", 9.5), ("bob", 0.5), ("ada", 2.0)]):
            conn.execute("INSERT INTO py_orders VALUES (%s, %s, %s)", (i, customer, amount))

    def query_with_parameters():
        rows = conn.execute(
            "SELECT customer, count(*) AS n, sum(amount) AS total FROM py_orders "
            "WHERE amount > %s GROUP BY customer ORDER BY customer",
            (0.1,),
        ).fetchall()
        assert rows == [("ada", 2, 11.5), ("bob", 1, 0.5)], rows

    def metadata_columns():
        rows = conn.execute("SELECT _partition, _offset FROM py_orders ORDER BY _offset").fetchall()
        assert [r[1] for r in rows] == [0, 1, 2], rows

    def errors_are_postgres_errors():
        try:
            conn.execute("SELECT nope FROM py_orders")
        except psycopg.Error as e:
            assert e.sqlstate, f"no SQLSTATE on {e!r}"
        else:
            raise AssertionError("a bad column was accepted")
        # The connection is still usable.
        assert conn.execute("SELECT count(*) FROM py_orders").fetchone() == (3,)

    def default_transactional_connection():
        # psycopg's default: BEGIN before the first statement, COMMIT / ROLLBACK after.
        with psycopg.connect(host=host, port=int(port), user="sluice", dbname="sluice") as tx:
            assert tx.execute("SELECT count(*) FROM py_orders").fetchone() == (3,)
            tx.commit()
            assert tx.execute("SELECT min(id) FROM py_orders").fetchone() == (0,)
            tx.rollback()

    def bi_style_introspection():
        # What a BI tool asks on connect and when it lists tables and columns.
        conn.execute("SET extra_float_digits = 3")
        conn.execute("SET application_name = 'sluice-ci'")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("15")
        assert conn.execute("SHOW TRANSACTION ISOLATION LEVEL").fetchone() == ("read committed",)
        assert conn.execute("SELECT current_schema()").fetchone() == ("public",)
        assert conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        ).fetchall()
        assert ("py_orders",) in tables, tables
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            ("py_orders",),
        ).fetchall()
        assert [c[0] for c in columns[:3]] == ["id", "customer", "amount"], columns
        # The same through the system catalogs, as tools that read pg_catalog do.
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = %s ORDER BY c.relname",
            ("public",),
        ).fetchall()
        assert ("public", "py_orders") in rows, rows
        types = conn.execute(
            "SELECT a.attname, t.typname FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE c.relname = 'py_orders' ORDER BY a.attnum"
        ).fetchall()
        assert types[:3] == [("id", "int8"), ("customer", "varchar"), ("amount", "float8")], types

    def describe_through_the_catalogs():
        # psql's \dt and \d queries (pg_table_is_visible, OPERATOR(pg_catalog.~),
        # format_type), here through psycopg's extended protocol.
        tables = conn.execute(
            "SELECT n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner) "
            "FROM pg_catalog.pg_class c "
            "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' "
            "AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema' "
            "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2"
        ).fetchall()
        assert ("public", "py_orders", "sluice") in tables, tables
        (oid,) = conn.execute(
            "SELECT c.oid FROM pg_catalog.pg_class c "
            "WHERE c.relname OPERATOR(pg_catalog.~) '^(py_orders)$' COLLATE pg_catalog.default "
            "AND pg_catalog.pg_table_is_visible(c.oid)"
        ).fetchone()
        assert conn.execute("SELECT 'py_orders'::regclass::oid").fetchone() == (oid,)
        columns = conn.execute(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull "
            "FROM pg_catalog.pg_attribute a "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        ).fetchall()
        assert columns[:3] == [
            ("id", "bigint", False),
            ("customer", "character varying", False),
            ("amount", "double precision", False),
        ], columns

    def sqlalchemy_reflection():
        # SQLAlchemy's PostgreSQL dialect lists tables and reflects one through pg_catalog.
        engine = sqlalchemy.create_engine(f"postgresql+psycopg://sluice@{host}:{port}/sluice")
        try:
            inspector = sqlalchemy.inspect(engine)
            assert "py_orders" in inspector.get_table_names()
            columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("py_orders")}
            assert columns["id"] == "BIGINT" and columns["amount"] == "DOUBLE PRECISION", columns
            table = sqlalchemy.Table("py_orders", sqlalchemy.MetaData(), autoload_with=engine)
            assert [c.name for c in table.columns][:2] == ["id", "customer"]
        finally:
            engine.dispose()

    check("CREATE TABLE and INSERT with bound parameters", create_and_insert)
    check("a parameterised aggregate returns typed rows", query_with_parameters)
    check("metadata columns", metadata_columns)
    check("a bad statement is a PostgreSQL error and the connection survives", errors_are_postgres_errors)
    check("a default (transactional) connection: BEGIN, COMMIT, ROLLBACK", default_transactional_connection)
    check("BI-style session settings and information_schema introspection", bi_style_introspection)
    check("psql's describe queries through pg_catalog", describe_through_the_catalogs)
    if sqlalchemy is None:
        print("skip  psycopg: SQLAlchemy reflection (sqlalchemy is not installed)")
    else:
        check("SQLAlchemy lists and reflects tables", sqlalchemy_reflection)
    conn.close()
    print(f"psycopg: passed={passed} failed={failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
