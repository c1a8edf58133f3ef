"""The optional compiled steps (classifier/_fastcount.c), or None where they cannot be used.

Without a C compiler at install time the module is missing. A build from another version of the
C file (an older checkout, a stale in-place build) has other functions or signatures, so it is
not used either. Either way scoring takes the Python and numpy path, with the same results,
until `pip install -e .` builds the module again.
"""
from __future__ import annotations

#: The interface this code calls; `_fastcount.VERSION` must be equal (bump both on any change).
INTERFACE = 5

try:
    from . import _fastcount as fastcount
except ImportError:  # installed without a C compiler
    fastcount = None

if fastcount is not None and getattr(fastcount, "VERSION", None) != INTERFACE:
    fastcount = None
