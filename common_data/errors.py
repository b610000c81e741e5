"""Errors meant for people: one line naming the file or key at fault and what to do."""


class UserError(Exception):
    """A problem with the user's input (file, config key, option). Printed as one line, no traceback."""


class ConfigError(UserError):
    """A config key is missing, unknown, of the wrong type or inconsistent."""


class ImageReadError(UserError):
    """An image file is missing, unreadable, truncated or not an image."""


class DataError(UserError):
    """A data folder, a pairing of LQ and GT files or a meta-info list is wrong."""
