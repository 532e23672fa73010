"""The one exception type for user mistakes.

Command-line entry points catch it, print its message on one line and exit with status 2;
everything else (a bug) keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix (a flag, a path, a file); the message says what to do."""
