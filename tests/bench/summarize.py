#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns Google Benchmark JSON outputs into build/bench/summary.{md,json}.

Usage: summarize.py OUT_DIR RESULT.json...
Every benchmark becomes one row with its counters (plain and instrumented ns
per operation and their ratio where the benchmark compares the two).
"""
import json
import pathlib
import sys

SKIP = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
        "iterations", "real_time", "cpu_time", "time_unit", "family_index",
        "per_family_instance_index", "items_per_second"}


def rows(paths):
    context = None
    for path in paths:
        data = json.loads(pathlib.Path(path).read_text())
        context = context or data["context"]
        for bench in data["benchmarks"]:
            counters = {k: v for k, v in bench.items() if k not in SKIP and isinstance(v, (int, float))}
            yield {"binary": pathlib.Path(path).stem, "name": bench["name"],
                   "time": f'{bench["real_time"]:.4g} {bench["time_unit"]}', "counters": counters}
    rows.context = context


def main():
    out_dir = pathlib.Path(sys.argv[1])
    results = list(rows(sys.argv[2:]))
    context = rows.context or {}
    machine = (f'{context.get("host_name", "?")}: {context.get("num_cpus", "?")} CPUs at '
               f'{context.get("mhz_per_cpu", "?")} MHz, {context.get("date", "")}')
    lines = [f"Machine: {machine}", "", "| benchmark | time per iteration | counters |", "|---|---|---|"]
    for r in results:
        counters = ", ".join(f"{k} {v:.4g}" for k, v in sorted(r["counters"].items()))
        lines.append(f'| {r["binary"]}/{r["name"]} | {r["time"]} | {counters} |')
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    (out_dir / "summary.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
