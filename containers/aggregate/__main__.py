import sys

from jobkit.runner import run_job

from aggregate.job import run

sys.exit(run_job("aggregate", run))
