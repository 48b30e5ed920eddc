"""The command line's ``--cluster ADDRESS`` / ``--workers N`` (``process`` and ``export``)."""
from __future__ import annotations

import argparse

from . import LOCAL

CLUSTER_HELP = (f"run on a Ray cluster: '{LOCAL}' (a private instance on this machine, 127.0.0.1 only) or the "
                "head node's address; needs the extra: pip install \"studio-catalog[cluster]\" (docs/cluster.md)")


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None, metavar="ADDRESS", help=CLUSTER_HELP)
    p.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="cluster workers (default: one per CPU of the cluster, or per GPU with --device cuda)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return n
