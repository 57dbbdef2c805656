import sys

from jobkit.runner import run_job

from ingest.job import run

sys.exit(run_job("ingest", run))
