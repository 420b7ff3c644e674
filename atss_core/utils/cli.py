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


def run_cli(main):
    """Calls ``main()``; any exception becomes "error: <message>" on stderr and exit status 1
    (130 for Ctrl-C), unless --debug is among the arguments."""
    debug = DEBUG_FLAG in sys.argv
    # taken out before argparse: after KEY VALUE overrides it would be read as an override
    sys.argv[:] = [arg for arg in sys.argv if arg != DEBUG_FLAG]
    try:
        return main()
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
