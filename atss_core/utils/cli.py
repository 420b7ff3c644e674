"""Command-line entry points: a user error ends with one line that names the problem and a
non-zero exit status, not a traceback (``--debug`` shows the traceback)."""
import sys

DEBUG_FLAG = "--debug"
# errors whose message is the whole story (ours name the file, key or value); others are
# shown with their type, e.g. "ZeroDivisionError: division by zero"
_SELF_EXPLAINING = (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, KeyError, TypeError,
                    RuntimeError, FloatingPointError)
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def describe_error(error):
    """One readable message for ``error``: the message of an error raised in a DataLoader
    worker is taken from the worker's traceback, and a KeyError's message is not quoted."""
    message = error.args[0] if isinstance(error, KeyError) and error.args and isinstance(error.args[0], str) \
        else str(error)
    if "Original Traceback" in message:  # torch re-raises worker errors with the worker's traceback as text
        lines = [line for line in message.strip().splitlines() if line.strip()]
        last = lines[-1]
        name, _, text = last.partition(": ")
        message = text if text and name.split(".")[-1].endswith(("Error", "Exception")) else last
        if name.split(".")[-1] in ("KeyError",) and message.startswith(("'", '"')):
            message = message[1:-1]
        return message
    if not isinstance(error, _SELF_EXPLAINING) or not message:
        message = "{}: {}".format(type(error).__name__, message) if message else type(error).__name__
    return message


class CommandError(Exception):
    """Ends a command with ``exit_status``, raised by library code instead of SystemExit. With
    the error status (1) the message is printed; other statuses (128 + signal after a stop)
    are outcomes the raiser has already logged."""

    def __init__(self, message, exit_status=EXIT_ERROR):
        super().__init__(message)
        self.exit_status = exit_status


def add_debug_flag(parser):
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of an error instead of a one-line message")


def parse_with_overrides(parser, argv=None):
    """``parser.parse_args(argv)`` for parsers whose last argument is ``opts`` (KEY VALUE
    overrides, argparse.REMAINDER): a --debug written after the overrides is the flag, not
    an override."""
    args = parser.parse_args(argv)
    if DEBUG_FLAG in (args.opts or []):
        args.opts = [arg for arg in args.opts if arg != DEBUG_FLAG]
        args.debug = True
    return args


def parse_size(text):
    """"800x1216" -> (800, 1216)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError("sizes are written HxW, such as 800x1216; got {!r}".format(text)) from None
    return height, width


def run_cli(main):
    """Calls ``main()``; any exception becomes "error: <message>" on stderr and exit status 1
    (130 for Ctrl-C, a CommandError's own status), unless --debug is among the arguments."""
    debug = DEBUG_FLAG in sys.argv[1:]
    try:
        return main()
    except CommandError as error:
        if debug and error.exit_status == EXIT_ERROR:
            raise
        if error.exit_status == EXIT_ERROR:
            print("error: {}".format(error), file=sys.stderr)
        sys.exit(error.exit_status)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001 -- the boundary where every error becomes a message
        if debug:
            raise
        print("error: {}".format(describe_error(error)), file=sys.stderr)
        print("(run again with {} for the full traceback)".format(DEBUG_FLAG), file=sys.stderr)
        sys.exit(EXIT_ERROR)
