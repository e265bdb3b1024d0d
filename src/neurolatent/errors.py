"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class NeurolatentError(Exception):
    """A problem with the user's input (a file, a parameter) that the user can fix.

    The message is one line that names the file or parameter and says what is wrong.
    """
