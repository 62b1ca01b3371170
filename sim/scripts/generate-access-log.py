#!/usr/bin/env python3
"""Writes a real-looking nginx access log (combined format followed by $request_time) for
`ferry sim --replay` and `ferry plan`: two hours of traffic to a web app, with a quiet start, a morning
ramp, a busy stretch, a short spike and a quieter end; pages, API calls, static files and a
slow report page, each with its own service-time distribution. Seeded: the same arguments
write the same bytes.

    python3 sim/scripts/generate-access-log.py --requests 300000 --hours 2 > access.log
"""

import argparse
import calendar
import math
import random
import sys
import time

PATHS = [
    # (weight, method, path, median seconds, spread (log-space sigma), bytes)
    (40, "GET", "/", 0.012, 0.5, 5120),
    (20, "GET", "/products/{id}", 0.025, 0.6, 8400),
    (15, "GET", "/api/cart", 0.008, 0.4, 512),
    (10, "POST", "/api/cart/items", 0.030, 0.5, 256),
    (8, "GET", "/search?q={word}", 0.060, 0.8, 12000),
    (5, "POST", "/checkout", 0.120, 0.5, 1024),
    (2, "GET", "/reports/monthly", 0.800, 0.6, 64000),
]
WORDS = ["shoes", "lamp", "desk", "chair", "mug", "bike", "tent", "book"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "curl/8.5.0",
]


def shape(fraction):
    """Relative request rate over the log (0 to 1): a quiet early start, a ramp, a plateau, a
    spike, a wind-down."""
    if fraction < 0.15:
        return 0.08
    ramp = min(1.0, 0.3 + (fraction - 0.15) / 0.2 * 0.7)
    spike = 2.5 if 0.55 <= fraction < 0.58 else 1.0
    wind_down = 1.0 if fraction < 0.8 else 1.0 - (fraction - 0.8) * 2.5
    wobble = 1.0 + 0.15 * math.sin(fraction * 40.0)
    return ramp * spike * wind_down * wobble


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--start", default="2026-11-30T09:00:00", help="UTC time of the first line")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seconds = int(args.hours * 3600)
    weights = [shape(s / seconds) for s in range(seconds)]
    total = sum(weights)
    start = calendar.timegm(time.strptime(args.start, "%Y-%m-%dT%H:%M:%S"))
    out = sys.stdout
    path_weights = [p[0] for p in PATHS]
    written = 0
    for second in range(seconds):
        expected = args.requests * weights[second] / total
        # Poisson-like around the shape, with the rounding carried so the total is exact.
        count = max(0, int(rng.gauss(expected, math.sqrt(expected)) + 0.5))
        if second == seconds - 1:
            count = max(0, args.requests - written)
        count = min(count, args.requests - written)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(start + second))
        for _ in range(count):
            _, method, path, median, sigma, size = rng.choices(PATHS, path_weights)[0]
            path = path.format(id=rng.randint(1, 5000), word=rng.choice(WORDS))
            duration = median * math.exp(rng.gauss(0.0, sigma))
            status = 200 if rng.random() > 0.01 else 404
            ip = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            agent = rng.choice(AGENTS)
            out.write(
                f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}" {duration:.3f}\n'
            )
        written += count
    print(f"{written} requests over {seconds} s", file=sys.stderr)


if __name__ == "__main__":
    main()
