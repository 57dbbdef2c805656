"""Exit codes of the `sluice` command, and the errors that carry one.

    0    succeeded
    1    the run failed (an execution FAILED, never started, or did not finish in time; an AWS error)
    2    usage or input error (arguments, options, input/output paths, unknown execution or stack)
    3    environment: endpoint unreachable, credentials refused or expired, port in use, project
         root or template.yaml missing, local deploy failed
    130  interrupted (Ctrl-C)
    129, 143  stopped by SIGHUP (a closed terminal) or SIGTERM: 128 + the signal, as 130 is for
         SIGINT; `local run` and `demo` stop the local cloud and remove its files first
         (sluice.cli.stopping); `local up` exits 0 when stopped this way

Every error is one line on stderr, `sluice: <what is wrong>; <what to do>`, never a traceback
(set SLUICE_DEBUG=1 to get the traceback of an unexpected one).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class UsageError(Exception):
    """Bad arguments or input files: exit 2. The message says what is wrong; what to do."""


class EnvironmentProblem(Exception):
    """The machine, the endpoint or the credentials are not what the command needs: exit 3."""
