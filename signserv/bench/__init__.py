"""`signserv bench`: signatures per second, latency, cold path and flood cost, in one run.

DESIGN §7: speed and memory are measured here and reported, never asserted by a timed test.
"""

from signserv.bench.report import BenchReport, render_comparison, render_table
from signserv.bench.runner import SMOKE_OPTIONS, BenchOptions, run_benchmark

__all__ = [
    "SMOKE_OPTIONS",
    "BenchOptions",
    "BenchReport",
    "render_comparison",
    "render_table",
    "run_benchmark",
]
