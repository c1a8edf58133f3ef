"""Migrations and connection handling, on SQLite and PostgreSQL."""
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from classifier.database import Database, normalise_url, run_migrations, schema_revision
from classifier.errors import StoreError
from classifier.schema import metadata


def test_empty_database_migrates_to_the_schema_module(database_url):
    db = Database(database_url)
    assert schema_revision(db.engine) is None
    db.upgrade()
    assert schema_revision(db.engine) == "0002"
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "classifier/schema.py and the migrations disagree: write a migration"
    db.dispose()


def test_migrations_go_down_and_up_again_keeping_nothing_half_done(database_url):
    db = Database(database_url)
    db.upgrade()
    run_migrations(db.engine, "base")
    assert schema_revision(db.engine) is None
    assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.upgrade()
    db.upgrade()  # idempotent
    assert {"feedback", "api_keys"} <= set(sa.inspect(db.engine).get_table_names())
    db.dispose()


@pytest.mark.parametrize("url, message", [
    ("mysql://root@localhost/x", "unsupported database 'mysql'"),
    ("not a url", "cannot use database URL"),
])
def test_bad_urls_are_one_clear_error(url, message):
    with pytest.raises(StoreError, match=message):
        normalise_url(url)



@pytest.mark.parametrize("url", [
    "postgresql://postgres:s3cretpw@127.0.0.1:54x2/test",  # a port that is not a number
    "post gres://forum:s3cretpw@db/x",  # does not parse: SQLAlchemy's message quotes it whole
    "postgresql://forum:s3c@retpw@db:x/test",  # a raw "@" in the password
    "postgresql://forum:s3c?retpw@db:x/test",  # a raw "?" (it was taken for the query)
    "postgresql://forum:s3c#re/tpw@db:x/test",
])
def test_an_error_about_a_url_never_shows_its_password(url):
    with pytest.raises(StoreError) as caught:
        normalise_url(url)
    assert "cannot use database URL" in str(caught.value) and ":***@" in str(caught.value)
    assert "s3c" not in str(caught.value) and "retpw" not in str(caught.value)


def test_a_password_in_the_query_is_hidden_too():
    from classifier.database import redact_password

    assert redact_password("postgresql://forum@db/x?sslmode=require&password=s3cret") == \
        "postgresql://forum@db/x?sslmode=require&password=***"
    assert redact_password("sqlite:///var/postsieve.db") == "sqlite:///var/postsieve.db"
    assert redact_password("postgresql://forum@db:5432/x") == "postgresql://forum@db:5432/x"


def test_a_missing_driver_is_one_clear_error():
    from classifier.database import create_engine

    with pytest.raises(StoreError, match="driver for postgresql.psycopg2 is not installed|cannot use database URL"):
        create_engine("postgresql+psycopg2://u@h/db")


def test_a_database_from_a_newer_postsieve_is_one_clear_error(tmp_path):
    import sqlalchemy as sa

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="migrated by a newer postsieve"):
        db.upgrade()


def test_plain_postgresql_urls_use_psycopg3():
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_unreachable_server_is_a_store_error():
    db = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="database unreachable"):
        db.ping()
    with pytest.raises(StoreError, match="cannot migrate"):
        db.upgrade()


def test_each_process_gets_its_own_engine(tmp_path, monkeypatch):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    first = db.engine
    assert db.engine is first
    monkeypatch.setattr("os.getpid", lambda: -1)  # as after a fork
    assert db.engine is not first
