"""Reads a sluice lake on S3 back with tools no one here wrote.

usage: read_lake.py delta|parquet s3://bucket/prefix

`delta` opens the Delta table with the `deltalake` package (delta-rs); `parquet` reads
every `.parquet` object under the prefix with pyarrow. Prints one CSV line per row (the
oracle's columns: station,window_start,window_end,entries,exits) on stdout, and on stderr
a `types=` line with the column types and, for Delta, `version=` and `files=`.
The endpoint and credentials come from the standard AWS_* variables.
"""

import io
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def storage_options():
    keys = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
    options = {k: os.environ[k] for k in keys}
    options["AWS_ALLOW_HTTP"] = "true"
    return options


def read_delta(url):
    from deltalake import DeltaTable

    table = DeltaTable(url, storage_options=storage_options())
    print(f"version={table.version()} files={len(table.file_uris())}", file=sys.stderr)
    return pa.table(table.to_pyarrow_dataset().to_table())


def read_parquet(url):
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ["AWS_REGION"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    tables = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(".parquet") and "/_" not in key:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                tables.append(pq.read_table(io.BytesIO(body)))
    print(f"files={len(tables)}", file=sys.stderr)
    return pa.concat_tables(tables)


def main():
    mode, url = sys.argv[1], sys.argv[2]
    table = read_delta(url) if mode == "delta" else read_parquet(url)
    types = ",".join(f"{f.name}:{f.type}" for f in table.schema)
    print(f"types={types}", file=sys.stderr)
    time = "%Y-%m-%d %H:%M:%S"
    for r in table.to_pylist():
        print(
            f"{r['station']},{r['window_start'].strftime(time)},"
            f"{r['window_end'].strftime(time)},{r['entries']},{r['exits']}"
        )


if __name__ == "__main__":
    main()
