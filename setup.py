"""Only the optional C extension lives here; everything else is in pyproject.toml.

`classifier/_fastcount.c` is the scoring fast path's compiled step (plain C API, no numpy
headers). `optional=True`: on a machine without a C compiler the install goes on without it and
scoring uses its numpy path, which gives the same results.
"""
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Keep each multiply and add rounded on its own (no fused multiply-add), so the compiled
    arithmetic gives the same bits as Python's on every CPU (gcc and clang fuse by default
    where the CPU has FMA: aarch64, or x86 with -march=native)."""

    def build_extensions(self):
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args.append("-ffp-contract=off")
        super().build_extensions()


setup(ext_modules=[Extension("classifier._fastcount", ["classifier/_fastcount.c"], optional=True)],
      cmdclass={"build_ext": BuildExt})
