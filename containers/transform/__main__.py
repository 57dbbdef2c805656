import sys

from jobkit.runner import run_job

from transform.job import run

sys.exit(run_job("transform", run))
