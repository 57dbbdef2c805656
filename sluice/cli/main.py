"""Entry point of the `sluice` command: parse, dispatch, turn errors into exit codes."""

from __future__ import annotations

import os
import sys

from botocore.exceptions import BotoCoreError, ClientError

from sluice.cli import commands
from sluice.cli.arguments import build_parser
from sluice.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from sluice.stack import StackNotFoundError


def main(argv: list[str] | None = None) -> int:
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
        print(f"sluice: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StackNotFoundError as error:
        print(f"sluice: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as error:
        print(f"sluice: AWS error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("sluice: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
