"""Build of dialsim's compiled modules, the V.42bis coder and the async-HDLC framing (metadata: pyproject.toml)."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]

setup(
    ext_modules=[
        Extension("dialsim.link._v42bis", ["dialsim/link/_v42bis.c"], extra_compile_args=FLAGS),
        Extension("dialsim.proto._hdlc", ["dialsim/proto/_hdlc.c"], extra_compile_args=FLAGS),
    ]
)
