"""How fast this machine is right now: fp32 matrix products on 1 and all threads, and a pure
Python loop. Run it before and after a timing you record, so figures from different days (or a
shared, throttled machine) can be compared: a wall time is only comparable between runs whose
probes agree.

Usage: ``python benchmarks/machine_speed.py``.
"""

from __future__ import annotations

import os
import time

import torch


def matmul_peak(threads: int, size: int = 2048, repeats: int = 3, products: int = 5) -> float:
    """fp32 FLOP/s of ``size × size`` products on ``threads`` threads: the best of ``repeats``
    timings of ``products`` products each (``benchmarks/superlearner_speed.py`` times single
    1024 × 1024 products for its floor)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(products):
                a @ b
            best = min(best, (time.perf_counter() - t) / products)
        return 2 * size**3 / best
    finally:
        torch.set_num_threads(before)


def python_loop_s(n: int = 3_000_000) -> float:
    """Seconds of a pure-Python loop of ``n`` multiply-adds (the interpreter's speed)."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - t


def main() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print(f"fp32 matmul: {matmul_peak(1) / 1e9:.0f} GFLOP/s on 1 thread, {matmul_peak(cores) / 1e9:.0f} GFLOP/s on "
          f"{cores} threads; Python loop of 3M multiply-adds: {python_loop_s():.3f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
