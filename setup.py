"""Build hook for the optional compiled cores (the rest of the project is configured in pyproject.toml).

``monitor/analysis/_dedup_c.c`` and ``_cluster_c.c`` are C versions of the near-duplicate index's and the topic
clusterer's inner loops (the replay's two largest costs). They are optional: where no C compiler is present (or the
build fails), ``pip install`` still succeeds and the pure-Python reference implementations run instead, with the same
results (tests/test_native_dedup.py and tests/test_native_cluster.py check they agree). ``MONITOR_NATIVE=0`` turns
the compiled cores off at run time.
"""

from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent
SOURCES = ["_dedup_c", "_cluster_c"]

setup(
    ext_modules=[
        Extension(f"monitor.analysis.{name}", [f"monitor/analysis/{name}.c"], optional=True,
                  extra_compile_args=["-O2", "-std=c11"])
        for name in SOURCES
        if (HERE / "monitor" / "analysis" / f"{name}.c").is_file()
    ],
)
