"""Builds the optional C codec (streamkit/formats/_speedups*.c); metadata is in pyproject.toml.

The extension is optional: when no C compiler (or no Python headers) is found, the install still
succeeds and streamkit runs on its pure-Python codec, with one line on stderr saying so.
``STREAMKIT_PURE_PYTHON=1`` at install time skips the build; ``STREAMKIT_SANITIZE=1`` builds it
with AddressSanitizer and UBSan (scripts/test --sanitize).
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

_SANITIZE = os.environ.get("STREAMKIT_SANITIZE") == "1"
_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]
if _SANITIZE:
    _FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]


class EditableBytecode(build_py):
    """An editable install byte-compiles the package in place, as pip does for a regular install.

    ``pip install -e .`` leaves the sources where they are and compiles none of them; Python
    then writes each ``.pyc`` on first import, unless ``PYTHONDONTWRITEBYTECODE`` is set (as on
    some CI and container images), in which case every command compiles every module it imports
    again, each time it starts (measured in docs/benchmarks.md, start-up). A source edited later
    is compiled again in memory, as without this, until its ``.pyc`` is rewritten.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            package = Path(__file__).resolve().parent / "streamkit"
            compileall.compile_dir(str(package), quiet=1)


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
_C_PARTS += ["kafka_produce", "librdkafka", "librdkafka_client", "librdkafka_produce"]
_C_PARTS += ["redis"]
"""The C files of the one extension module (see _speedups_module.c for what each holds)."""

extensions = []
if os.environ.get("STREAMKIT_PURE_PYTHON") != "1":
    extensions.append(
        Extension(
            "streamkit.formats._speedups",
            [f"streamkit/formats/_speedups_{part}.c" for part in _C_PARTS],
            depends=["streamkit/formats/_speedups.h", "streamkit/formats/_speedups_librdkafka.h"],
            extra_compile_args=_FLAGS,
            extra_link_args=["-fsanitize=address,undefined"] if _SANITIZE else [],
            # dlopen/dlsym (LibrdkafkaProducer finds the librdkafka confluent-kafka loaded, on
            # Linux): in libc itself since glibc 2.34, in libdl before.
            libraries=["dl"] if sys.platform.startswith("linux") else [],
            optional=True,
        )
    )

setup(
    ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt, "build_py": EditableBytecode}
)
