"""`python -m bench [runtime|fetch|neighbours|density|e2e|async|breakdown|cluster|all] [--duration S]`: run
the benchmarks and print figures. `cluster` (also in `all`) needs root and the local cluster's
binaries (`make deps`); it brings the cluster up when it is not."""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=[
            "runtime",
            "fetch",
            "neighbours",
            "density",
            "e2e",
            "async",
            "breakdown",
            "cluster",
            "all",
        ],
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    if args.which in ("runtime", "all"):
        from bench import runtime_bench

        runtime_bench.main(args.duration)
    if args.which in ("fetch", "all"):
        from bench import fetch_bench

        fetch_bench.main()
    if args.which in ("neighbours", "all"):
        from bench import neighbour_bench

        neighbour_bench.main()
    if args.which in ("density", "all"):
        from bench import density_bench

        density_bench.main()
    if args.which in ("e2e", "all"):
        from bench import e2e_bench

        e2e_bench.main(args.duration)
    if args.which in ("async", "all"):
        from bench import async_bench

        async_bench.main(args.duration)
    if args.which in ("breakdown", "all"):
        from bench import breakdown

        breakdown.main()
    if args.which in ("cluster", "all"):
        from bench import cluster_bench

        cluster_bench.main(args.duration)


if __name__ == "__main__":
    main()
