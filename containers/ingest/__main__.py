from jobkit.runner import exit_now, run_job

from ingest.job import run

exit_now(run_job("ingest", run))
