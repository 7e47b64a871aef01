"""Exceptions raised for bad input.

Every user-facing problem (a missing file, a corrupt array, an unknown option, an impossible configuration) is
raised as one of these, with a message that names the file, key or value at fault. The CLI prints the message
alone, without a traceback.
"""


class JaxPhysVAEError(Exception):
    """Base class of the library's own errors."""


class DataError(JaxPhysVAEError, ValueError):
    """A data file, directory or array is missing, corrupt or of the wrong shape or content."""


class ConfigError(JaxPhysVAEError, ValueError):
    """A configuration, preset name, option or hyper-parameter is unknown or impossible."""
