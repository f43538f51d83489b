"""The command line of ``docker/kafka_local.py``: arguments, help, exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kafkalocal.cluster_layout import VALID_NODE_COUNTS
from kafkalocal.console import LocalKafkaError
from kafkalocal.locations import DEFAULT_DIR, DEFAULT_LIBS
from kafkalocal.maven_jars import LIBS_ENV
from kafkalocal.subcommands import (
    cmd_down,
    cmd_fetch,
    cmd_start_node,
    cmd_status,
    cmd_stop_node,
    cmd_up,
    cmd_watch,
)


def port_arg(text: str) -> int:
    """argparse type for --port: 0 (pick free ports) or 1..65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected an integer 0-65535 (0 picks free ports), got {text!r}"
        )
    return int(text)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (documented in docker/kafka_local.py)."""
    parser = argparse.ArgumentParser(
        prog="kafka_local.py",
        description="Run local Apache Kafka brokers (KRaft) from Maven Central jars.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dir_help = f"cluster directory (default {DEFAULT_DIR})"
    libs_help = f"jar folder (default ${LIBS_ENV} or {DEFAULT_LIBS})"

    def add_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=dir_help)

    def add_libs(p: argparse.ArgumentParser) -> None:
        p.add_argument("--libs", type=Path, default=None, help=libs_help)

    p_fetch = sub.add_parser("fetch", help="copy the broker jars with Maven (idempotent)")
    add_libs(p_fetch)
    p_fetch.set_defaults(func=cmd_fetch)

    p_up = sub.add_parser("up", help="start a 1- or 3-node cluster and wait until it answers")
    add_dir(p_up)
    add_libs(p_up)
    p_up.add_argument(
        "--port",
        type=port_arg,
        default=9092,
        help="client port of node 1; node i uses PORT+2(i-1), controller +1; "
        "0 picks free ports (default 9092)",
    )
    p_up.add_argument("--nodes", type=int, choices=VALID_NODE_COUNTS, default=1)
    p_up.add_argument(
        "--partitions",
        type=positive_int,
        default=1,
        help="num.partitions default for new topics (default 1)",
    )
    p_up.add_argument(
        "--timeout",
        type=positive_float,
        default=90.0,
        help="seconds to wait for the brokers, excluding fetch (default 90)",
    )
    p_up.add_argument("--json", action="store_true", help="print a JSON object, not the bootstrap")
    p_up.add_argument(
        "--owner-pid",
        type=positive_int,
        default=None,
        help="run `down` automatically once this process exits",
    )
    p_up.set_defaults(func=cmd_up)

    p_down = sub.add_parser("down", help="stop every node (SIGTERM, SIGKILL after --timeout)")
    add_dir(p_down)
    p_down.add_argument("--timeout", type=positive_float, default=30.0)
    p_down.add_argument(
        "--purge", action="store_true", help="also delete the data and cluster.json (logs are kept)"
    )
    p_down.set_defaults(func=cmd_down)

    p_stop = sub.add_parser("stop-node", help="stop one node, keeping its data")
    p_stop.add_argument("node", type=positive_int, help="node id (1-based)")
    add_dir(p_stop)
    p_stop.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    p_stop.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds before SIGTERM escalates to SIGKILL (default 30)",
    )
    p_stop.set_defaults(func=cmd_stop_node)

    p_start = sub.add_parser("start-node", help="restart one node from its data")
    p_start.add_argument("node", type=positive_int, help="node id (1-based)")
    add_dir(p_start)
    add_libs(p_start)
    p_start.add_argument("--timeout", type=positive_float, default=90.0)
    p_start.add_argument("--json", action="store_true")
    p_start.set_defaults(func=cmd_start_node)

    p_status = sub.add_parser("status", help="show nodes; exit 3 unless every node answers")
    add_dir(p_status)
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(func=cmd_status)

    p_watch = sub.add_parser("watch", help="internal: `down` once --owner-pid exits")
    add_dir(p_watch)
    p_watch.add_argument("--owner-pid", type=positive_int, required=True)
    p_watch.set_defaults(func=cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except LocalKafkaError as exc:
        print(f"kafka_local: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("kafka_local: interrupted", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:  # `status | head -1`: the reader left, nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status
