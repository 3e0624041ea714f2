"""The one exception type that means "this target could not be analyzed"."""


class TargetError(Exception):
    """A problem with what the user asked for: it is reported as one line and exit code 2.

    The message names the problem and what to do about it; the CLI never shows a traceback for it
    (unless --debug).
    """
