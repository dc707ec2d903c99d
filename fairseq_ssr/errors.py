"""Bad input: one line that names the file, exit code 2, in every fairseq entry point the plugin runs in.

fairseq prints a traceback for whatever goes wrong inside ``main``; for a file the user gave that is not what it
must be (a garbage ``dict.txt``, a dataset that does not match its manifest, an unreadable checkpoint with nothing
to fall back on) the last line of that traceback is all that matters. The plugin raises :class:`BadInput` for
those, and ``fairseq.distributed.utils.call_main``, through which fairseq-train, fairseq-validate and
fairseq-interactive run, is wrapped when the plugin is imported to print it as one line and exit 2
(fairseq-generate calls its ``main`` directly and keeps the traceback). Any other exception keeps its traceback.
"""
import sys

from fairseq.distributed import utils as distributed_utils


class BadInput(ValueError):
    """A file given to the plugin is missing, incomplete or of the wrong kind; the message names it."""


def exit_on_bad_input(call_main):
    """``call_main`` printing a :class:`BadInput` as ``fairseq-ssr: error: ...`` and exiting 2."""
    if getattr(call_main, "exits_on_bad_input", False):  # the plugin imported a second time
        return call_main

    def wrapper(cfg, main, **kwargs):
        try:
            return call_main(cfg, main, **kwargs)
        except BadInput as e:
            print(f"fairseq-ssr: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    wrapper.exits_on_bad_input = True
    wrapper.wrapped = getattr(call_main, "wrapped", call_main)
    return wrapper


def install_one_line_errors() -> None:
    """Wrap fairseq's ``call_main`` as it is now (with :mod:`fairseq_ssr.distributed` in place); idempotent."""
    distributed_utils.call_main = exit_on_bad_input(distributed_utils.call_main)
