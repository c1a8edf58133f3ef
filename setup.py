"""Only the optional C extension lives here; everything else is in pyproject.toml.

`classifier/_fastcount.c` is the scoring fast path's compiled step (plain C API, no numpy
headers). `optional=True`: on a machine without a C compiler the install goes on without it and
scoring uses its numpy path, which gives the same results.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("classifier._fastcount", ["classifier/_fastcount.c"], optional=True)])
