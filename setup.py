"""Build the optional C accelerator; metadata lives in setup.cfg.

``elixirscope.capture._speedups`` is ``optional``: if it cannot be compiled the
install still succeeds and the pure-Python capture runtime is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "elixirscope.capture._speedups",
            sources=["elixirscope/capture/_speedups.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
