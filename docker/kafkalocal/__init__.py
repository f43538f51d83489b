"""Local Apache Kafka brokers (KRaft) from Maven Central jars: the code behind
``docker/kafka_local.py``, and the API test support uses to start brokers of its own.

Standard library only: it runs before the project's virtualenv exists.
"""

from kafkalocal.cluster_layout import (
    ClusterSpec,
    NodePaths,
    NodeSpec,
    new_cluster_id,
    nodes_from_ports,
    plan_ports,
)
from kafkalocal.cluster_state import load_spec, resolve_spec, save_spec
from kafkalocal.command_line import main
from kafkalocal.console import LocalKafkaError, tail
from kafkalocal.free_ports import pick_free_ports
from kafkalocal.java_runtime import find_java, parse_java_major
from kafkalocal.kraft_config import (
    broker_command,
    format_command,
    heap_for,
    render_properties,
    server_settings,
)
from kafkalocal.maven_jars import MARKER_NAME, ensure_libs, fetch, libs_complete, resolve_libs
from kafkalocal.metadata_probe import (
    MetadataView,
    decode_metadata_response,
    encode_metadata_request,
    probe_metadata,
)
from kafkalocal.processes import is_dead_state, spawn_detached

__all__ = [
    "MARKER_NAME",
    "ClusterSpec",
    "LocalKafkaError",
    "MetadataView",
    "NodePaths",
    "NodeSpec",
    "broker_command",
    "decode_metadata_response",
    "encode_metadata_request",
    "ensure_libs",
    "fetch",
    "find_java",
    "format_command",
    "heap_for",
    "is_dead_state",
    "libs_complete",
    "load_spec",
    "main",
    "new_cluster_id",
    "nodes_from_ports",
    "parse_java_major",
    "pick_free_ports",
    "plan_ports",
    "probe_metadata",
    "render_properties",
    "resolve_libs",
    "resolve_spec",
    "save_spec",
    "server_settings",
    "spawn_detached",
    "tail",
]
