#!/usr/bin/env python3
"""Medians and ratios from `go test -bench` output, for README.md.

usage: python3 benchmarks/table.py benchmarks/2026-11-27-serve.txt

Prints one markdown row per operation and goroutine count: qrng beside
ChaCha8 and PCG (one per goroutine), ChaCha8 behind a mutex and
crypto/rand, all from the same file (the same run).
"""
import re
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op', line)
    if m:
        runs[m.group(1)].append(float(m.group(3)))
med = {k: statistics.median(v) for k, v in runs.items()}


def ns(v):
    return f"{v:.1f} ns" if v < 100 else f"{v:.0f} ns"


ops = ["Uint64", "IntN1000", "Float64", "Perm100"]
print("| call | goroutines | qrng | ChaCha8 (each its own) | PCG (each its own) | ChaCha8 behind a mutex | crypto/rand | qrng / ChaCha8 | ChaCha8 mutex / qrng |")
print("|---|---|---|---|---|---|---|---|---|")
for op in ops:
    for g in (1, 2, 4, 8):
        k = f"BenchmarkServe/{op}/g={g}/"
        q, c, p, l, r = (med.get(k + x) for x in ("qrng", "ChaCha8", "PCG", "ChaCha8Locked", "cryptorand"))
        if None in (q, c, p, l, r):
            continue
        print(f"| `{op}` | {g} | {ns(q)} | {ns(c)} | {ns(p)} | {ns(l)} | {ns(r)} | {q / c:.2f}× | {l / q:.1f}× |")
print()
print("| call | goroutines | qrng | crypto/rand | ChaCha8 (each its own) | qrng / crypto/rand |")
print("|---|---|---|---|---|---|")
for g in (1, 2, 4, 8):
    k = f"BenchmarkServe/Read32B/g={g}/"
    q, r, c = (med.get(k + x) for x in ("qrng", "cryptorand", "ChaCha8"))
    if None in (q, r, c):
        continue
    print(f"| `Read` 32 B | {g} | {ns(q)} | {ns(r)} | {ns(c)} | {q / r:.2f}× |")
