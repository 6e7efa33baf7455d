"""Command line: `init` lands the history, `arrive` appends hourly batches, `stats` counts rows per table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from include.vyapar import settings
from include.vyapar.data.datagen import generate_initial, land_next_batch, table_row_counts
from include.vyapar.data.datagen.landing import LandingNotEmptyError

EXIT_REFUSED = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.vyapar.data.datagen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_landing(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument(
            "--landing", type=Path, default=settings.LANDING_DIR, help="landing folder (default: %(default)s)"
        )
        return command

    init = with_landing(commands.add_parser("init", help="land the initial history as batch 000000"))
    init.add_argument("--scale", type=float, default=1.0, help="1.0 = 5k customers, 20k orders, 100k events")
    init.add_argument("--seed", type=int, default=42)
    init.add_argument("--as-of", default=None, help="end of history, ISO time in UTC (default: now, to the hour)")
    init.add_argument("--days", type=int, default=90, help="days of history (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="wipe landed data first")
    init.add_argument("--quiet", action="store_true", help="no progress bar")

    arrive = with_landing(commands.add_parser("arrive", help="append the next hourly batch(es)"))
    arrive.add_argument("--hours", type=int, default=1, help="number of hourly batches to land")
    arrive.add_argument("--at", default=None, help="land one batch arriving at this ISO time (UTC)")
    arrive.add_argument("--quiet", action="store_true", help="no progress bar")

    with_landing(commands.add_parser("stats", help="print rows landed per table"))
    return parser


def _print_counts(counts: dict[str, int]) -> None:
    width = max(map(len, counts))
    for table, rows in counts.items():
        print(f"{table:<{width}}  {rows:>12,}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "init":
            counts = generate_initial(
                args.landing,
                scale=args.scale,
                seed=args.seed,
                as_of=args.as_of,
                days=args.days,
                force=args.force,
                progress=not args.quiet,
            )
            _print_counts(counts)
            print(f"landed batch 000000 in {args.landing} in {time.perf_counter() - started:.1f}s")
        elif args.command == "arrive":
            result = land_next_batch(args.landing, at=args.at, hours=args.hours, progress=not args.quiet)
            _print_counts(result["rows"])
            print(f"landed batch(es) {', '.join(result['batch_ids'])} at {result['loaded_at']}")
        else:
            _print_counts(table_row_counts(args.landing))
    except (LandingNotEmptyError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
