"""Builds the optional C codec (streamkit/formats/_speedups*.c); metadata is in pyproject.toml.

The extension is optional: when no C compiler (or no Python headers) is found, the install still
succeeds and streamkit runs on its pure-Python codec, with one line on stderr saying so.
``STREAMKIT_PURE_PYTHON=1`` at install time skips the build; ``STREAMKIT_SANITIZE=1`` builds it
with AddressSanitizer and UBSan (scripts/test --sanitize).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_SANITIZE = os.environ.get("STREAMKIT_SANITIZE") == "1"
_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]
if _SANITIZE:
    _FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed compile in one line and carries on without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler at all: distutils raises before any build
            self._skip(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._skip(error)

    @staticmethod
    def _skip(error: BaseException) -> None:
        reason = str(error).strip().splitlines()[-1:] or [type(error).__name__]
        sys.stderr.write(
            f"streamkit: C codec not built ({reason[0]}); using the pure-Python codec\n"
        )


_C_PARTS = ["module", "text", "scan", "encode", "ss", "kafka"]
"""The C files of the one extension module (see _speedups_module.c for what each holds)."""

extensions = []
if os.environ.get("STREAMKIT_PURE_PYTHON") != "1":
    extensions.append(
        Extension(
            "streamkit.formats._speedups",
            [f"streamkit/formats/_speedups_{part}.c" for part in _C_PARTS],
            depends=["streamkit/formats/_speedups.h"],
            extra_compile_args=_FLAGS,
            extra_link_args=["-fsanitize=address,undefined"] if _SANITIZE else [],
            optional=True,
        )
    )

setup(ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt})
