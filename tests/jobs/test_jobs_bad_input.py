"""Every kind of bad input: exit 65, one clear line, no traceback, nothing half-written."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.jobs.helpers import CONTAINERS, IN_BUCKET, JOB_TIMEOUT, Run

HEADER = b"transaction_id,category,country,amount\n"
PARALLEL = 3


def rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"t%d,groceries,DE,%d.5\n" % (i, i) for i in range(start, start + n))


def truncated_gzip() -> bytes:
    data = gzip.compress(HEADER + rows(5000))
    return data[: len(data) // 2]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


BAD_INPUTS = {
    "empty-object": ("empty.csv", b"", {}, "is empty (0 bytes)"),
    "header-only": ("header.csv", HEADER, {}, "has a header row but no data rows"),
    "no-header": ("nohead.csv", rows(20), {}, "is the header row missing?"),
    "wrong-delimiter": (  # ';' splits lines unevenly, so it is not detected: the hint says why
        "semi.csv",
        HEADER.replace(b",", b";") + rows(5).replace(b",", b";") + b"t9;groceries;DE;1;2\n",
        {},
        "wrong delimiter? the header is one column containing ';'",
    ),
    "ambiguous-delimiter": (
        "semi-pipe.csv",
        b"category;country|amount\n" + b"groceries;DE|1.5\n" * 5,
        {},
        "cannot tell the delimiter: ';' and '|' each split every sampled line",
    ),
    "decimal-comma-with-comma-delimiter": (
        "dec.csv",
        HEADER + rows(2),
        {"decimal": ",", "delimiter": ","},
        "decimal ',' needs a delimiter other than ','",
    ),
    "headerless-without-columns": ("nohead2.csv", rows(3), {"header": False}, "columns must name"),
    "columns-with-header": (
        "cols.csv",
        HEADER + rows(3),
        {"columns": ["a", "b", "c", "d"]},
        "set header: false",
    ),
    "delimiter-of-two-characters": (
        "two.csv",
        HEADER + rows(3),
        {"delimiter": ";;"},
        "delimiter must be one character",
    ),
    "header-given-as-data": (
        "named.csv",
        HEADER + rows(3),
        {"header": False, "columns": ["transaction_id", "category", "country", "amount"]},
        "line 1 holds the names given in columns, so it is a header row",
    ),
    "utf16-without-bom": ("u16.csv", HEADER + rows(3), {"encoding": "utf-16"}, "needs a byte-order mark"),
    "cp1252-undefined-byte": (
        "cp.csv",
        HEADER + b"t1,caf\x81,FR,1.5\n",
        {"encoding": "cp1252"},
        "input is not valid cp1252",
    ),
    "unclosed-quote": (
        "open.csv",
        HEADER + rows(2) + b't9,"groceries,DE,1.5\n' + rows(3, 10),
        {},
        "line 4: a quoted field opens here and is not closed by the end of the input",
    ),
    "skip-rows-beyond-the-end": ("skip.csv", HEADER + rows(2), {"skip_rows": 5}, "skip_rows is 5, but"),
    "latin1-without-encoding-option": (
        "latin1-head.csv",
        "catégorie,country,amount\n".encode("latin-1") + rows(2),
        {},
        "set the encoding option",
    ),
    "column-missing": (
        "nocountry.csv",
        b"transaction_id,category,amount\nt1,groceries,1.5\n",
        {},
        "column 'country' named in the aggregation spec is not in the input",
    ),
    "non-numeric-no-tolerance": (
        "abc.csv",
        HEADER + rows(3) + b"t9,groceries,DE,abc\n" + rows(3, 10),
        {},
        "line 5: column 'amount': 'abc' is not a number (max_bad_row_fraction is 0)",
    ),
    "r-style-na-gets-a-null-values-hint": (
        "na.csv",
        HEADER + rows(3) + b"t9,groceries,DE,NA\n",
        {},
        "line 5: column 'amount': 'NA' is not a number (if 'NA' means a missing value, set the option "
        "null_values, e.g. ['NA', \"\"]) (max_bad_row_fraction is 0)",
    ),
    "non-numeric-beyond-tolerance": (
        "many-bad.csv",
        HEADER + rows(90) + b"t9,groceries,DE,x\n" * 10,
        {"max_bad_row_fraction": 0.05},
        "10 of 100 rows rejected (10.00%), more than max_bad_row_fraction 0.05; first: line 92:",
    ),
    "wrong-field-count": (
        "fields.csv",
        HEADER + rows(2) + b"t7,groceries,DE\n",
        {},
        "line 4: expected 4 fields, found 3",
    ),
    "invalid-utf8": (
        "latin1.csv",
        HEADER + rows(2) + "t8,épicerie,FR,2.5\n".encode("latin-1") + rows(2, 5),
        {},
        "line 4: invalid UTF-8",
    ),
    "truncated-gzip": ("cut.csv.gz", truncated_gzip(), {}, "gzip input is truncated"),
    "not-parquet": ("fake.parquet", HEADER + rows(3), {}, "is not a Parquet file"),
    "line-of-10-mb": (
        "long.csv",
        HEADER + rows(3) + b"t9,groceries,DE," + b"9" * (10 * 1024 * 1024) + b"\n" + rows(3),
        {},
        "line 5 is longer than 8 MiB",
    ),
    "broken-json-line": (
        "broken.jsonl",
        b'{"category": "a", "country": "DE", "amount": 1}\n{"category": "b", "country": \n',
        {},
        "line 2: not a JSON object",
    ),
    "json-string-amount": (
        "strings.jsonl",
        b'{"category": "a", "country": "DE", "amount": 1}\n{"category": "a", "country": "DE", "amount": "2"}\n',
        {},
        "line 2: column 'amount': expected number, found string",
    ),
    "parquet-text-amount": (
        "text.parquet",
        parquet_bytes(pa.table({"category": ["a"], "country": ["DE"], "amount": ["1.5"]})),
        {},
        "column 'amount' is string, but sum, mean and stddev need a numeric column",
    ),
}


@pytest.fixture(scope="module")
def bad_input_runs(s3, aws_env):
    """Run every bad-input ingest up front, a few side by side (they are independent).

    The parametrized test below checks one case each; overlapping the processes' start-up
    roughly halves the wall time on two cores.
    """
    pending, done = [], {}
    for case, (name, data, options, _) in BAD_INPUTS.items():
        key = f"incoming/bad/{case}/{name}"
        s3.put_object(Bucket=IN_BUCKET, Key=key, Body=data)
        run = Run(s3=s3, aws_env=aws_env, key=key, options=options)
        pending.append((case, run, run.start("ingest")))
        while len(pending) >= PARALLEL or (pending and len(done) + len(pending) == len(BAD_INPUTS)):
            first, first_run, proc = pending.pop(0)
            out, err = proc.communicate(timeout=JOB_TIMEOUT)
            done[first] = (first_run, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


@pytest.mark.timeout(120)  # the first case also runs the module fixture
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_65_and_writes_nothing(bad_input_runs, s3, case):
    _, data, _, message = BAD_INPUTS[case]
    run, done = bad_input_runs[case]

    assert done.returncode == 65, done.stdout + done.stderr
    err = done.stderr.strip()
    assert "\n" not in err, err
    assert err.startswith("ingest: bad input: "), err
    assert message in err, err
    assert "Traceback" not in done.stdout + done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["level"] == "ERROR" and last["exit_code"] == 65 and message in last["msg"]
    assert run.manifest() is None
    assert run.work_keys() == []  # no shards either: they were removed
    assert run.output_keys() == []
    assert s3.get_object(Bucket=IN_BUCKET, Key=run.key)["Body"].read() == data


@pytest.mark.timeout(30)
def test_missing_input_object_is_bad_input(make_run, s3):
    run = make_run(HEADER + rows(2), "gone.csv")
    s3.delete_object(Bucket=IN_BUCKET, Key=run.key)
    done = run.run("ingest")
    assert done.returncode == 65
    assert done.stderr.strip() == f"ingest: bad input: input object s3://{IN_BUCKET}/{run.key} does not exist"
    assert run.manifest() is None


@pytest.mark.timeout(30)
def test_changed_input_object_is_bad_input(make_run, s3):
    """The object was overwritten after the event: its ETag no longer matches."""
    run = make_run(HEADER + rows(2), "changed.csv")
    env = run.env()
    s3.put_object(Bucket=IN_BUCKET, Key=run.key, Body=HEADER + rows(3))
    proc = subprocess.run(
        [sys.executable, "-m", "ingest"], cwd=CONTAINERS, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 65
    assert "changed since it was announced" in proc.stderr
