"""A relative import in a folder without __init__.py."""

from .helpers import thing  # noqa: F401
