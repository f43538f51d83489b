"""docker/kafka_local.py and its package kafkalocal: layout and properties (pure), the command
line, and real brokers."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import kafkalocal as kl
import pytest
from kafka import KafkaProducer
from support.kafka_broker import SCRIPT, KafkaClusterFactory, consume_all, run_script

from handlers.testing.fresh_topics import create_topics, unique_topic


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _spec(nodes: int, partitions: int = 1) -> Any:
    return kl.ClusterSpec("AAAAAAAAAAAAAAAAAAAAAA", kl.plan_ports(9092, nodes), partitions)


# --- layout ----------------------------------------------------------------------------------


def test_plan_ports_gives_each_node_a_client_and_a_controller_port() -> None:
    assert kl.plan_ports(9092, 1) == (kl.NodeSpec(1, 9092, 9093),)
    assert [(n.node_id, n.port, n.controller_port) for n in kl.plan_ports(9092, 3)] == [
        (1, 9092, 9093),
        (2, 9094, 9095),
        (3, 9096, 9097),
    ]


@pytest.mark.parametrize(("port", "nodes", "field"), [(65534, 3, "port"), (9092, 2, "nodes")])
def test_plan_ports_rejects_impossible_layouts(port: int, nodes: int, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        kl.plan_ports(port, nodes)


def test_bootstrap_lists_every_node_in_order() -> None:
    spec = kl.ClusterSpec("x", kl.nodes_from_ports([20001, 20002, 20003, 20004, 20005, 20006]), 1)
    assert spec.bootstrap == "127.0.0.1:20001,127.0.0.1:20003,127.0.0.1:20005"


def test_cluster_id_is_22_url_safe_chars_not_starting_with_dash() -> None:
    ids = {kl.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(
        set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )


def test_cluster_spec_survives_a_json_round_trip_and_rejects_a_bad_document() -> None:
    spec = _spec(3, partitions=4)
    assert kl.ClusterSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(ValueError, match="version"):
        kl.ClusterSpec.from_json({"version": 99})
    with pytest.raises(ValueError, match="nodes"):
        kl.ClusterSpec.from_json({"version": 1, "cluster_id": "x", "partitions": 1})


# --- server.properties -----------------------------------------------------------------------


def test_single_node_properties_use_a_dynamic_quorum_and_replication_factor_one(
    tmp_path: Path,
) -> None:
    text = kl.render_properties(_spec(1, partitions=3), 1, tmp_path / "data")
    props = _props(text)
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["log.dirs"] == str((tmp_path / "data").resolve())
    assert props["num.partitions"] == "3"
    expected = {
        "auto.create.topics.enable": "false",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    assert {k: props[k] for k in expected} == expected
    # .properties has no inline comments: a '#' after a value would become part of it.
    assert all("#" not in line for line in text.splitlines() if not line.startswith("#"))


def test_three_node_properties_use_static_voters_and_replication_factor_three(
    tmp_path: Path,
) -> None:
    props = _props(kl.render_properties(_spec(3), 2, tmp_path))
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    )
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"


def test_unknown_node_id_is_an_error_naming_the_valid_ids(tmp_path: Path) -> None:
    with pytest.raises(kl.LocalKafkaError, match=r"one of 1, 2, 3.*got 4"):
        kl.render_properties(_spec(3), 4, tmp_path)


def test_format_uses_standalone_only_for_the_single_node_quorum(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    single = kl.format_command("java", tmp_path, props, "cid", standalone=True)
    multi = kl.format_command("java", tmp_path, props, "cid", standalone=False)
    assert single[-1] == "--standalone"
    assert "--standalone" not in multi
    assert multi[multi.index("-t") + 1] == "cid"
    assert multi[multi.index("-c") + 1] == str(props)


def test_broker_heap_is_smaller_when_three_nodes_share_the_machine(tmp_path: Path) -> None:
    assert kl.heap_for(1) == "512m"
    assert kl.heap_for(3) == "384m"
    cmd = kl.broker_command("java", tmp_path, tmp_path / "p", "384m", tmp_path)
    assert "-Xms384m" in cmd
    assert "-Xmx384m" in cmd
    assert cmd[-2:] == ["kafka.Kafka", str(tmp_path / "p")]


# --- Metadata wire format --------------------------------------------------------------------


def test_metadata_request_is_a_size_prefixed_v1_request_for_no_topics() -> None:
    frame = kl.encode_metadata_request(7, client_id="c")
    (size,) = struct.unpack(">i", frame[:4])
    assert size == len(frame) - 4
    assert struct.unpack(">hhih", frame[4:14]) == (3, 1, 7, 1)
    assert frame[14:15] == b"c"
    assert frame[15:] == struct.pack(">i", 0)


def _metadata_response(correlation_id: int, brokers: list[tuple[int, str, int]]) -> bytes:
    body = struct.pack(">ii", correlation_id, len(brokers))
    for node_id, host, port in brokers:
        raw = host.encode()
        body += struct.pack(">ih", node_id, len(raw)) + raw + struct.pack(">ih", port, -1)
    return body + struct.pack(">ii", brokers[0][0], 0)


def test_metadata_response_yields_live_brokers_and_controller() -> None:
    payload = _metadata_response(5, [(2, "127.0.0.1", 9094), (1, "127.0.0.1", 9092)])
    view = kl.decode_metadata_response(payload, 5)
    assert view.brokers == {2: ("127.0.0.1", 9094), 1: ("127.0.0.1", 9092)}
    assert view.controller_id == 2


def test_metadata_response_rejects_truncation_and_a_foreign_correlation_id() -> None:
    payload = _metadata_response(5, [(1, "127.0.0.1", 9092)])
    with pytest.raises(ValueError, match="truncated"):
        kl.decode_metadata_response(payload[:12], 5)
    with pytest.raises(ValueError, match="correlation id"):
        kl.decode_metadata_response(payload, 6)


@pytest.mark.parametrize(
    ("output", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_402"', 8), ("?", None)],
)
def test_java_major_version_is_parsed_from_both_numbering_schemes(
    output: str, major: int | None
) -> None:
    assert kl.parse_java_major(output) == major


@pytest.mark.parametrize(
    ("stat", "dead"),
    [("42 (java) S 1", False), ("42 (java) Z 1", True), ("42 (a) Z b) S 1", False)],
)
def test_process_state_is_read_after_the_last_parenthesis(stat: str, dead: bool) -> None:
    # A command name may hold ') Z': only the field after the last ')' is the state.
    assert kl.is_dead_state(stat) is dead


# --- jar folder ------------------------------------------------------------------------------


def test_jar_folder_is_complete_only_with_a_matching_marker_and_every_jar(tmp_path: Path) -> None:
    (tmp_path / "a.jar").write_bytes(b"")
    marker = tmp_path / kl.MARKER_NAME
    marker.write_text(json.dumps({"kafka_version": "4.1.1", "jars": ["a.jar", "b.jar"]}))
    assert not kl.libs_complete(tmp_path, "4.1.1")
    (tmp_path / "b.jar").write_bytes(b"")
    assert kl.libs_complete(tmp_path, "4.1.1")
    assert not kl.libs_complete(tmp_path, "4.2.0")


def test_fetch_refuses_to_overwrite_a_folder_it_did_not_fill(tmp_path: Path) -> None:
    (tmp_path / "someone-elses.jar").write_bytes(b"")
    with pytest.raises(kl.LocalKafkaError, match="not filled by this script"):
        kl.fetch(tmp_path)
    assert (tmp_path / "someone-elses.jar").exists()


def test_reusing_a_directory_keeps_its_layout_and_rejects_conflicting_options(
    tmp_path: Path,
) -> None:
    kl.save_spec(tmp_path, _spec(1))
    assert kl.resolve_spec(tmp_path, 0, 1, 2).nodes == kl.plan_ports(9092, 1)
    with pytest.raises(kl.LocalKafkaError, match=r"^--nodes: .*1-node cluster, got 3"):
        kl.resolve_spec(tmp_path, 0, 3, 1)
    with pytest.raises(kl.LocalKafkaError, match=r"^--port: .*formatted for port 9092, got 9100"):
        kl.resolve_spec(tmp_path, 9100, 1, 1)


# --- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["up", "--nodes", "2"], "--nodes"),
        (["up", "--port", "70000"], "--port"),
        (["up", "--port", "-1"], "--port"),
        (["up", "--partitions", "0"], "--partitions"),
        (["up", "--timeout", "soon"], "--timeout"),
        (["stop-node", "0"], "node"),
        (["start-node"], "node"),
        (["launch"], "COMMAND"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        kl.main(argv)
    assert exited.value.code == 2
    assert field in capsys.readouterr().err


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_commands_on_an_empty_directory_are_safe_and_say_why(tmp_path: Path) -> None:
    status = _cli("status", "--dir", str(tmp_path))
    assert (status.returncode, status.stdout.strip()) == (3, f"no cluster in {tmp_path}")
    down = _cli("down", "--dir", str(tmp_path))
    assert down.returncode == 0
    assert "nothing running" in down.stderr
    stop = _cli("stop-node", "1", "--dir", str(tmp_path))
    assert stop.returncode == 1
    assert "run `up` first" in stop.stderr


# --- real brokers ----------------------------------------------------------------------------


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for future in [producer.send(topic, key=b"k", value=v) for v in values]:
            future.get(timeout=30)
    finally:
        producer.close()


@pytest.mark.kafka
def test_session_broker_round_trips_a_record(kafka_bootstrap: str) -> None:
    topic = unique_topic("kafka-local")
    create_topics(kafka_bootstrap, [topic], partitions=2)
    _produce(kafka_bootstrap, topic, [b"hello"])
    records = consume_all(kafka_bootstrap, topic, expected=1, timeout_s=30)
    assert [(r.key, r.value) for r in records] == [(b"k", b"hello")]


@pytest.mark.kafka
@pytest.mark.slow
def test_records_survive_a_clean_stop_and_a_kill_of_the_only_node(
    kafka_cluster: KafkaClusterFactory,
) -> None:
    cluster = kafka_cluster(nodes=1)
    again = json.loads(run_script(["up", "--dir", str(cluster.directory), "--port", "0", "--json"]))
    assert (again["already_running"], again["bootstrap"]) == (True, cluster.bootstrap)
    topic = unique_topic("restart")
    create_topics(cluster.bootstrap, [topic])
    _produce(cluster.bootstrap, topic, [b"before-stop"])

    cluster.stop_node(1)
    assert kl.probe_metadata(cluster.ports[1], timeout_s=1.0) is None
    cluster.start_node(1)
    _produce(cluster.bootstrap, topic, [b"before-kill"])

    cluster.stop_node(1, kill=True)
    assert kl.probe_metadata(cluster.ports[1], timeout_s=1.0) is None
    cluster.start_node(1)

    records = consume_all(cluster.bootstrap, topic, expected=2, timeout_s=30)
    assert [r.value for r in records] == [b"before-stop", b"before-kill"]
