"""The one error policy of every command: a UserError is one ``error: ...`` line and exit 2, a failed check
(``CheckFailed``) exit 1, Ctrl-C / SIGTERM ``interrupted`` and exit 130 / 143. Never a traceback for bad input."""
import sys
from typing import Callable, Optional, Sequence

from common_data.errors import UserError
from common_data.training.run_guard import exit_code

EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2


class CheckFailed(UserError):
    """Two implementations disagree beyond the tolerance (exit status 1)."""


def run_command(main: Callable[..., Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)`` under the error policy; -> its exit status."""
    try:
        return int(main(argv) or 0)
    except CheckFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_code()


def run_cli(main: Callable[[], Optional[int]]) -> None:
    """Run ``main()`` (no arguments) under the error policy and exit with its status."""
    sys.exit(run_command(lambda _argv: main()))
