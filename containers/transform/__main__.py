import sys

from jobkit.runner import exit_now, run_job

if sys.argv[1:] == ["plan"]:
    from transform.plan import run as plan

    exit_now(run_job("transform plan", plan))
else:
    from transform.job import run

    exit_now(run_job("transform", run))
