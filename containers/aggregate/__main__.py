from jobkit.runner import exit_now, run_job

from aggregate.job import run

exit_now(run_job("aggregate", run))
