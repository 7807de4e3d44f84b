"""Build of dialsim's one compiled module, the V.42bis encoder/decoder (metadata: pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dialsim.link._v42bis",
            ["dialsim/link/_v42bis.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
