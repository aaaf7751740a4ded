"""``python -m bench``: a million subscribers through the real pipeline, stage by stage.

Examples::

    python -m bench --sizes 10000,100000
    python -m bench --sizes 1000000 --providers sendgrid
    python -m bench --database-url postgresql://postgres@127.0.0.1:5432/test --chart b.png
    python -m bench --stage imports --sizes 1000000       # CSV and feed imports (bench.imports)

``--stage`` defaults to $BENCH_STAGE, else "send", so ``make bench BENCH_STAGE=imports``
runs the imports stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.imports import KINDS, run_imports
from bench.report import write_chart, write_json
from bench.run import PROVIDERS, run_all

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"
IMPORTS_JSON = Path(__file__).resolve().parent / "imports.json"
STAGES = ("send", "imports")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers: {text!r}") from err
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _providers(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in PROVIDERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"providers are {', '.join(PROVIDERS)}; got {text!r}")
    return names


def _kinds(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or any(name not in KINDS for name in names):
        raise argparse.ArgumentTypeError(f"import kinds are {', '.join(KINDS)}; got {text!r}")
    return names


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--set wants name=value, got {text!r}")
    return name.strip().lower().removeprefix("newsletter_"), value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default=os.environ.get("BENCH_STAGE") or "send",
        help="send: the send pipeline (default); imports: CSV and feed imports",
    )
    parser.add_argument(
        "--kinds",
        type=_kinds,
        default=list(KINDS),
        help="imports stage: comma-separated csv,feed (default both)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000],
        help="comma-separated subscriber counts (default 10000,100000)",
    )
    parser.add_argument(
        "--providers",
        type=_providers,
        default=list(PROVIDERS),
        help="comma-separated: sendgrid,smtp (default both)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL URL (a fresh schema per run); default a temp SQLite",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        dest="json_path",
        help=f"write the figures here (default {DEFAULT_JSON.name}, for imports "
        f"{IMPORTS_JSON.name}, in bench/)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="also plot recipients/s and peak RSS against N into this PNG",
    )
    parser.add_argument(
        "--no-events",
        action="store_false",
        dest="events",
        help="skip SendGrid's events through the webhook (A/B runs of the send path)",
    )
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        dest="overrides",
        metavar="NAME=VALUE",
        help="a service setting for the sending process, e.g. send_concurrency=2",
    )
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage == "imports":
        return imports_main(args)
    args.json_path = args.json_path or DEFAULT_JSON
    results = run_all(
        args.sizes, args.providers, args.database_url, dict(args.overrides), events=args.events
    )
    write_json(results, args.json_path)
    print(f"figures written to {args.json_path}")
    if args.chart is not None:
        write_chart(results, args.chart)
        print(f"chart written to {args.chart}")
    failed = [r for r in results if not r["exactly_once"]]
    if failed:
        print(f"error: {len(failed)} run(s) did not deliver exactly once", file=sys.stderr)
        return 1
    return 0


def imports_main(args: argparse.Namespace) -> int:
    """The imports stage; its figures go to their own JSON (no chart: a table suffices)."""
    results = run_imports(args.sizes, args.kinds, args.database_url)
    path = args.json_path or IMPORTS_JSON
    write_json(results, path)
    print(f"figures written to {path}")
    failed = [r for r in results if not r["verified"]]
    if failed:
        print(f"error: {len(failed)} import run(s) did not verify", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
