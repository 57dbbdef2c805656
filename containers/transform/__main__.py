from jobkit.runner import exit_now, run_job

from transform.job import run

exit_now(run_job("transform", run))
