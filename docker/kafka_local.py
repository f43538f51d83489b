#!/usr/bin/env python3
"""Run real Apache Kafka brokers (KRaft, combined broker+controller) locally, without Docker.

The broker jars come from Maven Central (``docker/kafka/pom.xml``) and run on the local JDK (17+).
Standard library only: this runs before the project's virtualenv exists. The code is in
the ``kafkalocal`` package beside this file (docs/architecture.md lists its modules).

Subcommands::

    fetch       copy the broker jars into --libs (default <repo>/.kafka/libs); idempotent
    up          format + start 1 or 3 nodes under --dir (default <repo>/.kafka/local), wait until
                every broker answers a Kafka Metadata request, print the bootstrap list
    down        SIGTERM every node, SIGKILL leftovers after --timeout, remove pid files
    stop-node   stop one node (SIGTERM, or SIGKILL with --kill), keeping its data
    start-node  restart one node from its existing data and wait until it answers
    status      show each node's process and whether it answers

Layout under --dir: ``cluster.json`` (cluster id, ports), ``node-N/server.properties``,
``node-N/data`` (log.dirs), ``node-N/broker.log`` (stdout+stderr of the JVM), ``node-N/pid``.
Ports: with ``--port P`` node i (1-based) listens on P+2(i-1) (clients) and P+2(i-1)+1 (controller);
``--port 0`` picks free ports below the kernel's ephemeral range. Exit status: 0 ok, 1 error,
2 usage error, 3 (status only) not every node answers.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder is on sys.path, so its package beside it imports.
from kafkalocal.command_line import main

if __name__ == "__main__":
    sys.exit(main())
