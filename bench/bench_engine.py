"""Time the strategy engine by hand: ``python bench/bench_engine.py`` from the repo root.

Not a test: timings depend on the machine. The baseline, measured in the same run on
the same inputs, is what the caller pays anyway (building the RuptureFacts and the
history), so the ratio says how much the engine adds on top of it.
"""

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ruptures import vocabulary  # noqa: E402
from strategies.engine import PastRupture, RuptureFacts, suggest  # noqa: E402

RUPTURES = 20_000
REPEATS = 5

KINDS = [slug for slug, _ in vocabulary.KINDS]
MARKERS = [slug for slug, _ in vocabulary.MARKERS]
SIGNALS = [slug for slug, _ in vocabulary.INTERNAL_SIGNALS]
SOURCES = [slug for slug, _ in vocabulary.SOURCES]


def raw_inputs(count, seed=1):
    # Plain tuples, as a form or a database row would hand them over.
    rng = random.Random(seed)
    inputs = []
    for _ in range(count):
        actor = "therapist" if rng.random() < 0.1 else "client"
        markers = tuple(rng.sample(MARKERS, rng.randint(0 if actor == "therapist" else 1, 3)))
        rupture = (
            rng.choice(KINDS),
            actor,
            markers,
            rng.randint(1, 5),
            rng.choice(SOURCES),
            tuple(rng.sample(SIGNALS, rng.randint(0, 2))),
        )
        history = tuple(
            (rng.randint(1, 10), rng.choice(KINDS), tuple(rng.sample(MARKERS, rng.randint(1, 2))))
            for _ in range(rng.randint(0, 6))
        )
        inputs.append((rupture, history))
    return inputs


def build(raw):
    return [
        (RuptureFacts(*rupture), [PastRupture(*past) for past in history])
        for rupture, history in raw
    ]


def time_baseline(raw):
    start = time.perf_counter()
    build(raw)
    return time.perf_counter() - start


def time_engine(raw):
    start = time.perf_counter()
    for rupture, history in build(raw):
        suggest(rupture, history)
    return time.perf_counter() - start


def main():
    raw = raw_inputs(RUPTURES)
    time_engine(raw[:1000])  # warm up
    baseline = min(time_baseline(raw) for _ in range(REPEATS))
    runs = [time_engine(raw) for _ in range(REPEATS)]
    best = min(runs)
    per_rupture = best / RUPTURES * 1e6
    engine_only = (best - baseline) / RUPTURES * 1e6
    print(f"ruptures per run:       {RUPTURES} (best of {REPEATS} runs)")
    print(f"baseline (build input): {baseline / RUPTURES * 1e6:8.2f} us per rupture")
    print(f"build + suggest:        {per_rupture:8.2f} us per rupture")
    print(f"suggest alone:          {engine_only:8.2f} us per rupture")
    print(f"median run:             {statistics.median(runs) / RUPTURES * 1e6:8.2f} us per rupture")
    print(f"ratio to baseline:      {best / baseline:8.1f}x")


if __name__ == "__main__":
    main()
