#!/usr/bin/env python3
"""Per-kernel GPU time from an Nsight Compute run: what a decode step or a prefill spends where.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv [--kernel-name regex:...] \\
        node bin/quest.js bench-latency ... > ncu.csv
    python3 tools/kernel-times.py ncu.csv [--bare]

ncu's stdout mixes the program's own output and its ==PROF== lines with the CSV; the rows
are read from its header on. One line a kernel (its name with template arguments; --bare
drops them): launches, median and total microseconds, share of the total. ncu serialises and
replays each kernel, so the times are each kernel alone, without launch gaps or overlap.
"""
import argparse
import csv
import re
import statistics
import sys

UNITS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def strip_args(name):
    """The name without its trailing argument list (which may hold "(anonymous namespace)")."""
    if not name.endswith(")"):
        return name
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(name[i], 0)
        if depth == 0:
            return name[:i]
    return name


def kernel_name(name, bare):
    """The function's name, its template arguments kept unless bare; no return type, namespaces or arguments."""
    name = strip_args(name)
    depth, out = 0, []
    for ch in name:
        depth += ch == "<"
        out.append(ch if depth == 0 or not bare else "")
        depth -= ch == ">"
    name = "".join(out)
    head = name.split("<", 1)[0]  # namespaces and the return type end at the last "::" or space before the template
    cut = max(head.rfind("::") + 2 if "::" in head else 0, head.rfind(" ") + 1)
    return name[cut:]


def read_rows(path):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID",')), None)
    if start is None:
        sys.exit(f"{path}: no ncu CSV header (\"ID\",...) found: was ncu run with --csv?")
    body = [l for l in lines[start:] if l.startswith('"')]
    return list(csv.DictReader(body))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--bare", action="store_true", help="one line a function, whatever its template arguments")
    args = ap.parse_args()
    times, unmeasured = {}, []
    for row in read_rows(args.csv):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = row.get("Metric Unit", "")
        if unit not in UNITS:
            sys.exit(f"{args.csv}: unit {unit!r} of kernel {row.get('Kernel Name')!r} is not one of {', '.join(UNITS)}")
        try:
            us = float(row["Metric Value"].replace(",", "")) * UNITS[unit]
        except ValueError:  # ncu writes "n/a" for a launch it could not measure
            unmeasured.append(kernel_name(row["Kernel Name"], args.bare))
            continue
        times.setdefault(kernel_name(row["Kernel Name"], args.bare), []).append(us)
    if not times:
        sys.exit(f"{args.csv}: no gpu__time_duration.sum rows")
    total = sum(sum(v) for v in times.values())
    print("| kernel | launches | median µs | total µs | share |")
    print("|---|---|---|---|---|")
    for name, v in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {name} | {len(v)} | {statistics.median(v):.1f} | {sum(v):.0f} | {100 * sum(v) / total:.1f}% |")
    print(f"| all | {sum(len(v) for v in times.values())} | | {total:.0f} | 100% |")
    if unmeasured:
        print(f"\n{len(unmeasured)} launch(es) without a time, left out: {', '.join(sorted(set(unmeasured)))}")


if __name__ == "__main__":
    main()
