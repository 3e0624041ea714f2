"""Warnings torch gives at import that say nothing about the user's model.

Imported before anything in reslint imports torch (runner, cli): a minimal install without numpy
would otherwise start every run with torch's "Failed to initialize NumPy" UserWarning, and reslint
needs no numpy.
"""

import warnings

warnings.filterwarnings("ignore", message=r"Failed to initialize NumPy", category=UserWarning)
