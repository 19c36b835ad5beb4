#!/usr/bin/env python3
"""Medians and ratios of BenchmarkSeeded and BenchmarkSeededInterleaved,
for README.md.

usage: python3 benchmarks/seeded_table.py benchmarks/2026-12-01-seeded.txt

Prints one markdown row per call: the quantum-seeded generator beside
ChaCha8 (and crypto/rand for reads), all from the same file (one run).
Times are medians of CPU time per call (cpu-ns/op, the thread's own
time, which waiting for a CPU on a loaded machine does not inflate);
the last column is the ratio of the medians of wall-clock time (ns/op).
Then the interleaved benchmark: per call, the medians of Seeded's and
ChaCha8's time in alternating batches of 1024 calls, and the median,
smallest and largest of the per-run ratios.
"""
import re
import statistics
import sys
from collections import defaultdict

wall, cpu = defaultdict(list), defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'^BenchmarkSeeded/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op', line)
    if not m:
        continue
    wall[m.group(1)].append(float(m.group(3)))
    c = re.search(r'([\d.]+) cpu-ns/op', line)
    if c:
        cpu[m.group(1)].append(float(c.group(1)))
mw = {k: statistics.median(v) for k, v in wall.items()}
mc = {k: statistics.median(v) for k, v in cpu.items()}


def t(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e4:
        return f"{v / 1e3:.1f} µs"
    return f"{v:.1f} ns" if v < 100 else f"{v:.0f} ns"


rows = [
    ("`Uint64`, called directly", "Uint64"),
    ("`Uint64` through a `rand.Source` interface value", "Uint64Source"),
    ("`rand.New(g).Uint64`", "RandUint64"),
    ("`rand.New(g).IntN(1000)`", "RandIntN1000"),
    ("`rand.New(g).Float64`", "RandFloat64"),
    ("`rand.New(g).Perm(100)`", "RandPerm100"),
    ("`Read` 32 B", "Read32B"),
    ("`Read` 1 MiB", "Read1MiB"),
]
print("| call | Seeded | ChaCha8 | crypto/rand | Seeded / ChaCha8, CPU time | Seeded / ChaCha8, wall clock |")
print("|---|---|---|---|---|---|")
for label, k in rows:
    s, c, r = (mc.get(f"{k}/{x}") for x in ("Seeded", "ChaCha8", "cryptorand"))
    ws, wc = mw.get(f"{k}/Seeded"), mw.get(f"{k}/ChaCha8")
    if None in (s, c, ws, wc):
        continue
    print(f"| {label} | {t(s)} | {t(c)} | {t(r)} | {s / c:.2f}× | {ws / wc:.2f}× |")
extra = [
    ("`Uint64` with `ReseedInterval` (a clock check every 4 KiB)", "Uint64/SeededInterval", "Uint64/ChaCha8"),
    ("ChaCha8 behind a wrapper that counts nothing, through a `rand.Source` interface value", "Uint64Source/ChaCha8Wrapped", "Uint64Source/ChaCha8"),
]
print()
print("| also measured | CPU time | ChaCha8, same call | ratio, CPU time | ratio, wall clock |")
print("|---|---|---|---|---|")
for label, a, b in extra:
    if a in mc and b in mc:
        print(f"| {label} | {t(mc[a])} | {t(mc[b])} | {mc[a] / mc[b]:.2f}× | {mw[a] / mw[b]:.2f}× |")

inter = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    m = re.match(r'^BenchmarkSeededInterleaved/(\S+?)(-\d+)?\s+\d+\s', line)
    if not m:
        continue
    for metric in ("seeded-ns/call", "chacha8-ns/call", "seeded/chacha8"):
        v = re.search(r'([\d.]+) ' + re.escape(metric), line)
        if v:
            inter[m.group(1)][metric].append(float(v.group(1)))
if inter:
    print()
    print("| call, interleaved | Seeded | ChaCha8 | Seeded / ChaCha8, median of runs | range over runs |")
    print("|---|---|---|---|---|")
    for label, k in rows:
        d = inter.get(k)
        if not d or not d["seeded/chacha8"]:
            continue
        r = d["seeded/chacha8"]
        print(f"| {label} | {t(statistics.median(d['seeded-ns/call']))} | {t(statistics.median(d['chacha8-ns/call']))} | "
              f"{statistics.median(r):.2f}× | {min(r):.2f}× to {max(r):.2f}× |")
