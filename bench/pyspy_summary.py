"""Summarize a py-spy raw profile: per thread, each function's inclusive share of its samples.

    py-spy record -p PID -d 15 -r 250 --threads --gil --format raw -o profile.txt
    .venv/bin/python -m bench.pyspy_summary profile.txt --top 60 > summary.txt

With `--gil`, only the thread holding the GIL is sampled, so the threads' shares say who kept the
interpreter busy (the event loop or the model thread) and each function's share what for.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


def summarize(lines: list[str], top: int) -> str:
    threads: Counter[str] = Counter()
    inclusive: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        samples = int(count)
        threads[thread] += samples
        for function in {_LINE_NUMBER.sub(")", frame) for frame in frames}:
            inclusive[thread][function] += samples
    total = sum(threads.values())
    out = [f"{total} samples"]
    for thread, samples in threads.most_common():
        out.append(f"== {thread}: {samples} samples ({samples / total:.0%})")
        for function, count in inclusive[thread].most_common(top):
            out.append(f"  {count / samples:6.1%}  {function}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=60, help="functions listed per thread")
    args = parser.parse_args()
    print(summarize(args.profile.read_text().splitlines(), args.top))


if __name__ == "__main__":
    main()
