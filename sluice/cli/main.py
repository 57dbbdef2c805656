"""Entry point of the `sluice` command: parse, dispatch, turn errors into exit codes.

Every error is one line on stderr, `sluice: <what is wrong>; <what to do>`, and one of the exit
codes documented in sluice.cli.exits; never a traceback (SLUICE_DEBUG=1 re-raises the unexpected).
"""

from __future__ import annotations

import os
import sys

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from sluice.cli import commands
from sluice.cli.arguments import build_parser
from sluice.cli.exits import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EnvironmentProblem,
    UsageError,
)
from sluice.cli.stopping import Stopped
from sluice.runs.follow import RunTimeoutError
from sluice.runs.start import RunNotStartedError
from sluice.stack import StackNotFoundError

# Error codes with which AWS (and the local cloud, which answers the same) refuses the caller's
# credentials: unknown key, bad signature, expired session token.
REFUSED_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
}
EXPORT_CREDENTIALS = (
    "export the credentials `sluice local up` printed (`. .sluice/local/credentials.env`), or valid AWS ones"
)


def fail(message: str, code: int) -> int:
    """Print the one-line error (a multi-line reason, such as YAML's, joined) and return `code`."""
    one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
    try:
        print(f"sluice: {one_line}", file=sys.stderr)
    except OSError:
        pass  # nowhere to say it (a terminal that hung up): the exit code still does
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except Stopped as stopped:  # SIGINT, SIGTERM or SIGHUP while a local cloud ran: 128 + signal
        return fail(
            f"{stopped.message}; the local cloud was stopped and its files removed", stopped.exit_code
        )


def run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        args.command is None
        or (args.command == "local" and args.local_command is None)
        or (args.command == "iam" and args.iam_command is None)
    ):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return commands.dispatch(args)
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except EnvironmentProblem as error:
        return fail(str(error), EXIT_ENVIRONMENT)
    except StackNotFoundError as error:
        return fail(
            f"{error}; deploy it, or pass the --stack, --endpoint-url and --region it is at", EXIT_USAGE
        )
    except RunNotStartedError as error:
        return fail(str(error), EXIT_FAILED)
    except RunTimeoutError as error:
        name = str(error).split(" ", 1)[0].rsplit(":", 1)[-1]
        return fail(
            f"execution did not finish in time: {error}; it may still be running: `sluice status {name}`",
            EXIT_FAILED,
        )
    except ClientError as error:
        return client_error(error)
    except BotoCoreError as error:
        return botocore_error(error)
    except Exception as error:
        if deploy_error(error):
            return fail(
                f"local deploy failed: {error}; fix the template (or what it names) and run again",
                EXIT_ENVIRONMENT,
            )
        if os.environ.get("SLUICE_DEBUG"):
            raise
        if isinstance(error, OSError) and error.strerror:
            where = f" ({error.filename})" if error.filename else ""
            return fail(
                f"{error.strerror}{where}; check the path, its permissions and free space", EXIT_ENVIRONMENT
            )
        return fail(
            f"unexpected error: {type(error).__name__}: {error}; run again with SLUICE_DEBUG=1 for the "
            "traceback, and report it",
            EXIT_FAILED,
        )


def client_error(error: ClientError) -> int:
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    if code in REFUSED_CREDENTIALS:
        message = details.get("Message", "")
        return fail(f"credentials refused ({code}: {message}); {EXPORT_CREDENTIALS}", EXIT_ENVIRONMENT)
    return fail(f"AWS error: {error}; check --stack, --region and what your credentials allow", EXIT_FAILED)


def botocore_error(error: BotoCoreError) -> int:
    if isinstance(error, EndpointConnectionError):
        url = str(error.kwargs.get("endpoint_url", "")).rstrip("/")
        return fail(
            f"endpoint {url} is not reachable; start the local cloud (`sluice local up`) and export "
            "what it printed, or check --endpoint-url/AWS_ENDPOINT_URL and the network",
            EXIT_ENVIRONMENT,
        )
    if isinstance(error, ReadTimeoutError):
        url = str(error.kwargs.get("endpoint_url", "")).rstrip("/")
        return fail(
            f"endpoint {url} did not answer in time; check that it is up and try again", EXIT_ENVIRONMENT
        )
    if isinstance(error, NoCredentialsError):
        return fail(f"no AWS credentials found; {EXPORT_CREDENTIALS}", EXIT_ENVIRONMENT)
    if isinstance(error, PartialCredentialsError):
        return fail(f"incomplete AWS credentials ({error}); {EXPORT_CREDENTIALS}", EXIT_ENVIRONMENT)
    return fail(f"AWS error: {error}; check --endpoint-url, --region and the AWS configuration", EXIT_FAILED)


def deploy_error(error: Exception) -> bool:
    """A DeployError, without importing the deployer (half a second) on every command."""
    module = sys.modules.get("sluice.local.deploy.errors")
    return module is not None and isinstance(error, module.DeployError)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
