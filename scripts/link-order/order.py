#!/usr/bin/env python3
"""Makes kiam.order (lld --symbol-ordering-file) from callgrind profiles of the agent and server.

Usage: order.py --profiles DIR --map LINK_MAP (--binary KIAM | --defined NAMES) --out kiam.order
                [--steady-after 35]

DIR holds what scripts/link-order/profile.sh leaves there: callgrind.<role>.<pid>[.<part>] (one
part per periodic dump, the last without a part number) and start.<pid> (the process's start, in
seconds since the epoch). A dump taken --steady-after seconds or more after its process started
counts as steady state (periodic work, requests); everything else as start-up and shutdown.

The order: functions the agent runs in steady state, then the server's, then the agent's other
functions, then the server's; each list in order of first execution. Left out: names the binary
does not define, and functions inside a large input section that is mostly cold (the toolchain's
prebuilt libraries put most of their code in one .text section per object; moving such a
section would drag its cold code into the hot region).
"""
import argparse
import collections
import os
import re
import subprocess
import sys

DUMP_TIME = re.compile(r"^desc: Trigger: .*\bt(\d+)\s*$")
FUNCTION = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
MAP_LINE = re.compile(r"^\s*([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(\d+) (\s*)(.*)$")
PROFILE = re.compile(r"^callgrind\.(agent|server)\.(\d+)(?:\.(\d+))?$")


def profiles(directory):
    """{(role, pid): [(part, path)]}, parts in dump order, the final dump (no part) last."""
    found = collections.defaultdict(list)
    for name in os.listdir(directory):
        match = PROFILE.match(name)
        if match:
            role, pid, part = match.group(1), int(match.group(2)), match.group(3)
            found[(role, pid)].append((int(part) if part else sys.maxsize, os.path.join(directory, name)))
    return {key: sorted(parts) for key, parts in found.items()}


def executed(parts, start, steady_after):
    """(steady, other): names of executed functions, each in order of first appearance."""
    names = {}  # callgrind compresses names: "fn=(id) name" once, "fn=(id)" after (across parts)
    steady, other = [], []
    for _, path in parts:
        dump_time = None
        ids = []
        with open(path, errors="replace") as profile:
            for line in profile:
                line = line.rstrip("\n")
                time_match = DUMP_TIME.match(line)
                if time_match:
                    dump_time = int(time_match.group(1))
                    continue
                match = FUNCTION.match(line)
                if match:
                    if match.group(2):
                        names[match.group(1)] = match.group(2)
                    ids.append(match.group(1))
        target = steady if dump_time is not None and dump_time - start >= steady_after else other
        target.extend(names[i] for i in ids if i in names)
    return steady, other


def text_sections(map_path):
    """Input sections of .text from an lld map: [(size, [(symbol, size)])]."""
    sections, output, current = [], None, None
    with open(map_path, errors="replace") as link_map:
        for line in link_map:
            match = MAP_LINE.match(line.rstrip("\n"))
            if not match:
                continue
            level, name, size = len(match.group(5)) // 8, match.group(6), int(match.group(3), 16)
            if level == 0:
                output, current = name, None
            elif output != ".text":
                continue
            elif level == 1:
                current = (size, [])
                sections.append(current)
            elif level == 2 and current is not None:
                current[1].append((name, size))
    return sections


def cold_bulk(sections, hot, large=16 << 10, share=0.25):
    """Names in input sections larger than `large` whose hot functions fill less than `share`."""
    result = set()
    for size, symbols in sections:
        if size <= large:
            continue
        hot_bytes = sum(s for name, s in symbols if name in hot)
        if 0 < hot_bytes < share * size:
            result.update(name for name, _ in symbols if name in hot)
    return result


def unique(names):
    seen, result = set(), []
    for name in names:
        if name not in seen and not name.startswith("0x"):
            seen.add(name)
            result.append(name)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", required=True)
    parser.add_argument("--map", required=True)
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--binary", help="the linked kiam: names it does not define are left out")
    names.add_argument("--defined", help="instead of --binary: a file of defined names, one a line")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steady-after", type=float, default=35)
    args = parser.parse_args()

    found = profiles(args.profiles)
    if not any(role == "agent" for role, _ in found) or not any(role == "server" for role, _ in found):
        sys.exit(f"order.py: no agent or no server profile in {args.profiles}")
    lists = {(role, kind): [] for role in ("agent", "server") for kind in ("steady", "other")}
    for (role, pid), parts in sorted(found.items(), key=lambda item: item[0][1]):
        with open(os.path.join(args.profiles, f"start.{pid}")) as start_file:
            start = int(start_file.read().split()[0])
        steady, other = executed(parts, start, args.steady_after)
        lists[(role, "steady")] += steady
        lists[(role, "other")] += other
    if not lists[("agent", "steady")]:
        sys.exit("order.py: no steady-state dump of the agent (did the profile run long enough?)")

    ordered = unique(lists[("agent", "steady")] + lists[("server", "steady")]
                     + lists[("agent", "other")] + lists[("server", "other")])
    if args.binary:
        defined = set(subprocess.run(["llvm-nm", "--defined-only", "-j", args.binary], check=True,
                                     capture_output=True, text=True).stdout.split())
    else:
        with open(args.defined) as listing:
            defined = set(listing.read().split())
    ordered = [name for name in ordered if name in defined]
    bulk = cold_bulk(text_sections(args.map), set(ordered))
    ordered = [name for name in ordered if name not in bulk]
    steady = set(lists[("agent", "steady")] + lists[("server", "steady")])
    with open(args.out, "w") as out:
        out.write("\n".join(ordered) + "\n")
    print(f"order.py: {len(ordered)} functions, {sum(name in steady for name in ordered)} of them run "
          f"in steady state; {len(bulk)} left in place in mostly cold sections -> {args.out}")


if __name__ == "__main__":
    main()
