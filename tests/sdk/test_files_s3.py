"""The files service on an S3-compatible store (moto's server, started here), as a cluster runs
it: `FILES_STORE=s3://bucket/prefix` with the standard `AWS_*` variables, on SQLite and on a
Postgres database of the test's own. Uploads through both SDKs land in the bucket under the
prefix, download back byte for byte, and a deleted file leaves no object behind."""

import base64
import hashlib
import os
import subprocess
import sys
import uuid

import boto3
import openai
import pytest
from google import genai
from google.genai import types

from conftest import CLIENT_TOKEN, free_port, new_key, start_gateway, wait_until

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def s3():
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(f"{endpoint}/moto-api/", server)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request):
    if request.param == "sqlite":
        yield {}
        return
    name = f"gbs3_{uuid.uuid4().hex}"
    subprocess.run(["psql", POSTGRES, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        yield {
            "DATABASE_URL": POSTGRES.rsplit("/", 1)[0] + f"/{name}",
            "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
    finally:
        subprocess.run(["psql", POSTGRES, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)


def objects(client, bucket):
    listed = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_files_live_in_the_bucket(s3, database, mock, tmp_path):
    endpoint, client = s3
    bucket = f"files-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    process, url, _ = start_gateway(
        mock,
        tmp_path,
        [new_key()],
        FILES_STORE=f"s3://{bucket}/gateway",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        **database,
    )
    try:
        # Large enough for a multipart upload to S3 (parts of 8 MB).
        content = os.urandom(9 * 1024 * 1024 + 123)
        oai = openai.OpenAI(api_key=CLIENT_TOKEN, base_url=f"{url}/v1", max_retries=0)
        created = oai.files.create(file=("blob.bin", content, "application/octet-stream"), purpose="user_data")
        stored = objects(client, bucket)
        assert len(stored) == 1 and stored[0].startswith("gateway/objects/"), stored
        body = client.get_object(Bucket=bucket, Key=stored[0])["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
        assert oai.files.content(created.id).read() == content

        path = tmp_path / "notes.txt"
        path.write_bytes(b"notes " * 1000)
        google = genai.Client(api_key=CLIENT_TOKEN, http_options=types.HttpOptions(base_url=url))
        uploaded = google.files.upload(file=path, config={"mime_type": "text/plain"})
        assert len(objects(client, bucket)) == 2, "the session's parts are gone, the file is there"
        answer = google.models.generate_content(model="gemini-2.5-flash", contents=[uploaded, "read it"])
        assert answer.text.startswith("Echo:")

        oai.files.delete(created.id)
        google.files.delete(name=uploaded.name)
        assert objects(client, bucket) == []
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0
