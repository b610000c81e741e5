"""Errors meant for people: one line naming the file or key at fault and what to do."""


class UserError(Exception):
    """A problem with the user's input (file, config key, option). Printed as one line, no traceback."""


class ConfigError(UserError):
    """A config key is missing, unknown, of the wrong type or inconsistent."""


class ImageReadError(UserError):
    """An image file is missing, unreadable, truncated or not an image."""


class DataError(UserError):
    """A data folder, a pairing of LQ and GT files or a meta-info list is wrong."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


def few(items, n: int = 3) -> str:
    """``a, b, c (+4 more)``: the first ``n`` items of a list for a one-line message."""
    items = [str(i) for i in items]
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
