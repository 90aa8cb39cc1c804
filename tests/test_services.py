"""The service fixtures start real servers that speak the real wire protocols, and isolate tests."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.services import PostgresServer, S3Bucket, S3Server, skip_or_fail

MIB = 2**20
S3_MIN_PART_BYTES = 5 * MIB


def test_postgres_answers_sql_over_tcp(postgres_server: PostgresServer, postgres_url: str) -> None:
    import psycopg

    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="lorareg", dbname=database
    ) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        conn.execute("CREATE TABLE t (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO t (body) VALUES (%s), (%s)", ("a", "b"))
        rows = conn.execute("SELECT body FROM t ORDER BY id").fetchall()
    assert version is not None and int(version[0]) >= 130000  # DROP DATABASE … WITH (FORCE) needs 13
    assert rows == [("a",), ("b",)]


def test_postgres_url_works_with_sqlalchemy(postgres_url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one() in postgres_url
    finally:
        engine.dispose()


@pytest.mark.parametrize("round_", [1, 2], ids=["first-test", "second-test"])
def test_each_test_gets_a_fresh_empty_database(
    postgres_server: PostgresServer, postgres_url: str, round_: int
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    with postgres_server.connect(database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        conn.execute(
            "CREATE TABLE left_behind (id int)"
        )  # would break the other round if databases were shared
    assert tables == (0,)


def test_postgres_listens_on_loopback_only(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
    assert listen == ("127.0.0.1",)


def test_s3_put_get_and_ranged_get(s3_bucket: S3Bucket) -> None:
    client = s3_bucket.server.client()
    client.put_object(Bucket=s3_bucket.name, Key="a/b.bin", Body=b"0123456789")
    whole = client.get_object(Bucket=s3_bucket.name, Key="a/b.bin")["Body"].read()
    part = client.get_object(Bucket=s3_bucket.name, Key="a/b.bin", Range="bytes=2-4")["Body"].read()
    assert (whole, part) == (b"0123456789", b"234")


def test_s3_multipart_upload_over_the_wire(s3_bucket: S3Bucket) -> None:
    client = s3_bucket.server.client()
    first, last = b"x" * S3_MIN_PART_BYTES, b"tail"
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="mp")
    parts = []
    for number, body in enumerate([first, last], start=1):
        answer = client.upload_part(
            Bucket=s3_bucket.name, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    client.complete_multipart_upload(
        Bucket=s3_bucket.name, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = client.head_object(Bucket=s3_bucket.name, Key="mp")
    assert head["ContentLength"] == len(first) + len(last)
    assert head["ETag"].strip('"').endswith("-2")  # a real multipart ETag, not a single PUT


def test_s3_default_credential_chain_reaches_the_server(s3_bucket: S3Bucket) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_bucket.endpoint_url)  # credentials from the environment
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert s3_bucket.name in names


def test_each_test_gets_a_fresh_empty_bucket(s3_server: S3Server, s3_bucket: S3Bucket) -> None:
    answer = s3_server.client().list_objects_v2(Bucket=s3_bucket.name)
    assert answer.get("KeyCount", 0) == 0
    assert s3_bucket.url("p/q") == f"s3://{s3_bucket.name}/p/q"


def test_unavailable_service_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORAREG_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no initdb here"):
        skip_or_fail("no initdb here")


def test_unavailable_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAREG_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="required service unavailable: no initdb here"):
        skip_or_fail("no initdb here")


def test_server_errors_reach_the_log_shown_on_failure(postgres_server: PostgresServer) -> None:
    import psycopg

    marker = f"lorareg-marker-{uuid.uuid4().hex}"
    with postgres_server.connect() as conn, pytest.raises(psycopg.errors.InvalidTextRepresentation):
        conn.execute("SELECT %s::int", (marker,))
    assert marker in postgres_server.log_tail()
