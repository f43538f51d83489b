"""docker/: the image and the compose stack, checked without a Docker engine.

What is checked: the files parse; every command is a real ``agora-events`` command path
with options it accepts; every environment variable given to our containers is one the
settings classes of that process read (and repeated defaults equal the settings'
defaults); health checks, dependencies, Prometheus targets and mounted files agree with
each other; the Dockerfile runs the console script as a non-root user, installs runtime
dependencies only and copies only files the build context keeps. The Kafka broker, its
listeners and its security: tests/security/test_compose_kafka.py.
"""

from __future__ import annotations

import json
import re
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings
from support.paths import ROOT

from handlers.settings import AgoraSettings, HandlerSettings
from webhook.cli import SUBCOMMANDS, main
from webhook.settings import ServeSettings, WebhookSettings
from webhook.shared.kafka_settings import KafkaSettings, TopicNames

DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = DOCKER / "prometheus.yml"

# The settings classes each of our processes reads (nested settings are followed).
PROCESS_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "webhook": (WebhookSettings, ServeSettings),
    "handlers": (HandlerSettings,),
    "kafka-setup": (KafkaSettings, TopicNames),  # `topics create` and `topics acls`
    "reconciler": (HandlerSettings,),  # `recording reconcile` reads the handlers' settings
    "operator": (HandlerSettings,),  # so do the `recording`, `dlq` and `whiteboard` commands
}
SPEC_VARIABLES = {  # SPEC.md section 4: fixed names
    "webhook": {"KAFKA_BOOTSTRAP_SERVERS", "AGORA_NCS_SECRET"},
    "handlers": {
        "KAFKA_BOOTSTRAP_SERVERS", "AGORA_APP_ID", "AGORA_CUSTOMER_ID", "AGORA_CUSTOMER_SECRET",
        "AGORA_APP_CERTIFICATE", "AGORA_API_BASE", "WHITEBOARD_API_BASE", "WHITEBOARD_TOKEN",
        "WHITEBOARD_REGION", "AGORA_EVENTS_CONFIG",
    },
    "kafka-setup": {"KAFKA_BOOTSTRAP_SERVERS"},
    "operator": {"KAFKA_BOOTSTRAP_SERVERS", "AGORA_EVENTS_CONFIG"},
    "reconciler": {
        "KAFKA_BOOTSTRAP_SERVERS", "AGORA_APP_ID", "AGORA_CUSTOMER_ID", "AGORA_CUSTOMER_SECRET",
        "AGORA_API_BASE", "AGORA_EVENTS_CONFIG",
    },
}
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}$")


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def our_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run the agora-events image (built from docker/Dockerfile)."""
    return {name: s for name, s in services.items() if "build" in s}


@dataclass(frozen=True)
class SettingVariable:
    name: str
    owner: type[BaseSettings]
    field: str
    field_info: FieldInfo


def _nested_settings(annotation: Any) -> type[BaseSettings] | None:
    candidates = typing.get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseSettings):
            return candidate
    return None


def _aliases(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [c if isinstance(c, str) else str(c.path[0]) for c in alias.choices]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0])]
    raise TypeError(f"unexpected alias {alias!r}")


def settings_variables(classes: tuple[type[BaseSettings], ...]) -> dict[str, SettingVariable]:
    """Environment variable name (upper case) -> the setting it feeds, for the classes and
    the settings classes nested in them (which read the environment themselves)."""
    found: dict[str, SettingVariable] = {}
    pending = list(classes)
    seen: set[type[BaseSettings]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        assert not cls.model_config.get("case_sensitive"), f"{cls.__name__} is case sensitive"
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, info in cls.model_fields.items():
            nested = _nested_settings(info.annotation)
            if nested is not None:
                pending.append(nested)
                continue
            names = _aliases(info) or [f"{prefix}{field_name}"]
            for name in names:
                found[name.upper()] = SettingVariable(name.upper(), cls, field_name, info)
    return found


def _click_path(args: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """(command path, leaf command, its own arguments) for ``agora-events ARGS``."""
    command: click.Command = main
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"{args}: names a group ({' '.join(path) or 'agora-events'}), not a command"
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"{args}: no subcommand {rest[0]!r} under {path or 'the root'}"
        path.append(rest.pop(0))
        command = sub
    return path, command, rest


def assert_real_command(args: list[str]) -> None:
    """``agora-events ARGS`` names a real command path and its options parse."""
    assert args, "empty command"
    assert args[0] in SUBCOMMANDS, f"{args}: unknown subcommand"
    path, command, rest = _click_path(args)
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="agora-events")
    assert result.exit_code == 0, result.output
    assert f"Usage: agora-events {' '.join(path)}" in result.output
    # Parse the arguments as the command would (types, unknown options) without running it.
    command.make_context(path[-1], list(rest))


def _bind_port(args: list[str]) -> int:
    bind = args[args.index("--bind") + 1]
    return int(bind.rsplit(":", 1)[1])


def _probe_url(test: list[str]) -> str:
    urls: list[str] = re.findall(r"https?://[^'\" ]+", " ".join(test))
    assert len(urls) == 1, test
    return urls[0]


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host part, container port) of each ``ports`` entry."""
    found = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), "ports are quoted strings (YAML 1.1 reads 22:22 as a number)"
        host, _, container = entry.rpartition(":")
        found.append((host, container))
    return found


# --- compose: commands and environment -----------------------------------------------------------


def test_compose_has_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"kafka-init", "kafka", "kafka-setup", "webhook", "handlers",
                             "reconciler", "operator", "prometheus", "alertmanager", "grafana"}
    assert set(our_services(services)) == {"kafka-setup", "webhook", "handlers", "reconciler",
                                           "operator"}


def test_our_services_build_the_image_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    images = set()
    for name, service in our_services(services).items():
        build = service["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
        images.add(service["image"])
    assert len(images) == 1  # one image, every role


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("webhook", ["webhook"]),
        ("handlers", ["handlers"]),
        ("reconciler", ["recording", "reconcile"]),
        ("operator", ["recording", "list"]),
    ],
)
def test_every_command_is_a_real_agora_events_command(
    services: dict[str, dict[str, Any]], service: str, expected: list[str]
) -> None:
    command = services[service]["command"]
    assert isinstance(command, list), "exec form: no shell between compose and the process"
    assert command[: len(expected)] == expected
    assert_real_command(command)


def test_a_wrong_command_would_be_caught() -> None:
    with pytest.raises(AssertionError, match="no subcommand"):
        assert_real_command(["topics", "make"])
    with pytest.raises(click.UsageError):
        assert_real_command(["topics", "create", "--partition", "6"])
    with pytest.raises(click.BadParameter):
        assert_real_command(["topics", "create", "--partitions", "six"])


@pytest.mark.parametrize("service", sorted(PROCESS_SETTINGS))
def test_environment_names_are_read_by_the_process_settings(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    environment = services[service]["environment"]
    assert isinstance(environment, dict), "mapping form, one variable per line"
    known = settings_variables(PROCESS_SETTINGS[service])
    unknown = sorted(set(environment) - set(known))
    assert not unknown, f"{service}: variables no settings class of the process reads: {unknown}"
    missing = sorted(SPEC_VARIABLES[service] - set(environment))
    assert not missing, f"{service}: the documented variables are not passed: {missing}"


def test_repeated_defaults_equal_the_settings_defaults(
    services: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for service, spec in our_services(services).items():
        known = settings_variables(PROCESS_SETTINGS[service])
        for name, value in spec["environment"].items():
            match = INTERPOLATION.match(value) if isinstance(value, str) else None
            if match is None:
                continue
            assert match["name"] == name, f"{service}: {name} interpolates {match['name']}"
            assert match["default"] is not None, f"{service}: {name} needs a :- default"
            assert match["default"] == str(known[name].field_info.default), (service, name)
            checked += 1
    assert checked >= 4


def test_secrets_are_never_written_in_the_compose_file(
    services: dict[str, dict[str, Any]],
) -> None:
    for service, spec in our_services(services).items():
        known = settings_variables(PROCESS_SETTINGS[service])
        for name, value in spec["environment"].items():
            setting = known.get(name)
            if setting is not None and "SecretStr" in str(setting.field_info.annotation):
                assert value is None, f"{service}: {name} must be passed through, not written"


def test_settings_variables_follow_prefixes_and_aliases() -> None:
    names = settings_variables((HandlerSettings,))
    assert {"AGORA_HANDLERS_METRICS_PORT", "AGORA_EVENTS_CONFIG", "AGORA_LOG_LEVEL",
            "KAFKA_BOOTSTRAP_SERVERS", "AGORA_TOPIC_EVENTS", "AGORA_APP_ID",
            "WHITEBOARD_TOKEN"} <= set(names)
    assert "AGORA_HANDLERS_CONFIG_PATH" not in names  # aliased to AGORA_EVENTS_CONFIG
    assert "AGORA_HANDLERS_KAFKA" not in names  # nested settings read their own prefix
    assert "AGORA_NCS_SECRET" in settings_variables((WebhookSettings,))


# --- compose: health and order -------------------------------------------------------------------


def test_dependencies_use_conditions_the_targets_can_meet(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            dependency = services[target]
            if condition == "service_healthy":
                check = dependency.get("healthcheck", {})
                assert check, f"{target} has no health check"
                assert not check.get("disable"), f"{target} has its health check disabled"
            elif condition == "service_completed_successfully":
                assert dependency.get("restart") == "no", f"{target} is not a one-shot"
            else:
                assert condition == "service_started", condition
    order = [("kafka", "kafka-init"), ("kafka-setup", "kafka"), ("webhook", "kafka-setup"),
             ("handlers", "kafka-setup"), ("reconciler", "kafka-setup"),
             ("operator", "kafka-setup")]
    for dependent, target in order:
        assert target in services[dependent]["depends_on"], (dependent, target)


@pytest.mark.parametrize("service", ["webhook", "handlers"])
def test_health_checks_probe_healthz_on_the_service_port(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    spec = services[service]
    test = spec["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "the slim image has no curl: probe with python"
    url = _probe_url(test)
    assert url.endswith("/healthz")
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    if service == "webhook":
        assert port == _bind_port(spec["command"])
        assert [c for _, c in _published_ports(spec)] == [str(port)]
    else:
        assert port == spec["environment"]["AGORA_HANDLERS_METRICS_PORT"]
    compile(test[3], f"{service} health check", "exec")  # the probe is valid Python


def test_no_service_inherits_the_webhook_probe_of_the_image(
    services: dict[str, dict[str, Any]], dockerfile: list[Instruction],
) -> None:
    """The image's HEALTHCHECK probes the webhook port; any other role must override it
    (its own port) or disable it, or Docker reports it unhealthy forever."""
    [image_check] = _final(dockerfile, "HEALTHCHECK")
    image_url = _probe_url(json.loads(image_check.argument.partition("CMD ")[2]))
    checked = []
    for name, spec in our_services(services).items():
        if spec.get("command", [""])[0] == "webhook":
            continue
        check = spec.get("healthcheck")
        assert check, f"{name} inherits the image's probe of {image_url}"
        if not check.get("disable"):
            assert _probe_url(check["test"]) != image_url, name
        checked.append(name)
    assert sorted(checked) == ["handlers", "kafka-setup", "operator", "reconciler"]


# --- compose: the reconciler ---------------------------------------------------------------------


def test_reconciler_is_opt_in_and_shares_the_handlers_configuration(
    services: dict[str, dict[str, Any]],
) -> None:
    reconciler, handlers = services["reconciler"], services["handlers"]
    # Opt-in: `recording reconcile` exits 2 without credentials, so a default stack
    # without them would restart it forever.
    assert reconciler["profiles"] == ["recording"]
    assert "profiles" not in handlers
    # The same rules file (mounted at the same place) and the variables it references;
    # each its own Kafka credentials (tests/security/test_compose_kafka.py).
    def config_mounts(service: dict[str, Any]) -> list[str]:
        return [v for v in service["volumes"] if v.startswith("./config:")]

    assert config_mounts(reconciler) == config_mounts(handlers) != []
    assert reconciler["env_file"] == handlers["env_file"]
    for name in ("AGORA_EVENTS_CONFIG", "AGORA_API_BASE", "KAFKA_BOOTSTRAP_SERVERS"):
        assert reconciler["environment"][name] == handlers["environment"][name], name
    # One instance per cluster: nothing scales it.
    assert "deploy" not in reconciler
    assert "scale" not in reconciler


def test_reconciler_receives_every_credential_the_client_requires(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = services["reconciler"]["environment"]
    agora = settings_variables((AgoraSettings,))
    passed = {name for name in environment if name in agora}
    for name in agora:
        monkeypatch.delenv(name, raising=False)
    for name in passed:
        # Compose fills ``${NAME:-default}`` with the default when NAME is unset.
        value = re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", environment[name] or "")
        monkeypatch.setenv(name, value or f"value-of-{name.lower()}")
    assert AgoraSettings().configured, f"the credentials passed ({sorted(passed)}) are not enough"
    # The check can fail: without the secret the client is not configured.
    monkeypatch.delenv("AGORA_CUSTOMER_SECRET")
    assert not AgoraSettings().configured


# --- compose: Prometheus -------------------------------------------------------------------------


def _webhook_metrics_port(webhook: dict[str, Any]) -> int:
    admin = webhook.get("environment", {}).get("AGORA_WEBHOOK_ADMIN_BIND")
    return int(admin.rsplit(":", 1)[1]) if admin else _bind_port(webhook["command"])


def test_prometheus_is_optional_and_scrapes_both_services(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounts = {}
    for volume in prometheus["volumes"]:
        host, container = volume.split(":")[:2]
        assert (DOCKER / host).is_file(), f"{host} is mounted but missing"
        mounts[container] = (DOCKER / host).resolve()
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_FILE
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    assert set(config["rule_files"]) <= set(mounts)
    assert mounts[config["rule_files"][0]] == ROOT / "docs" / "monitoring" / "alerts.yml"
    targets = {}
    for job in config["scrape_configs"]:
        [sd] = job["dns_sd_configs"]
        [name] = sd["names"]
        targets[job["job_name"]] = (name, sd["port"], job["metrics_path"])
    webhook, handlers = services["webhook"], services["handlers"]
    assert targets == {
        # /metrics is on the admin bind when compose sets one, else on the callback bind.
        "agora-webhook": ("webhook", _webhook_metrics_port(webhook), "/metrics"),
        "agora-handlers": ("handlers", handlers["environment"]["AGORA_HANDLERS_METRICS_PORT"],
                           "/metrics"),
    }


def test_handlers_metrics_port_is_the_settings_default(
    services: dict[str, dict[str, Any]],
) -> None:
    port = services["handlers"]["environment"]["AGORA_HANDLERS_METRICS_PORT"]
    assert port == HandlerSettings.model_fields["metrics_port"].default


def test_webhook_admin_endpoints_stay_on_the_compose_network(
    services: dict[str, dict[str, Any]],
) -> None:
    webhook = services["webhook"]
    admin_port = _webhook_metrics_port(webhook)
    assert admin_port != _bind_port(webhook["command"]), "compose sets an admin bind"
    published = {str(p).rsplit(":", 1)[-1] for p in webhook.get("ports", [])}
    assert str(admin_port) not in published, "/metrics and /readyz are not published"


# --- Dockerfile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str
    stage: int

    def exec_form(self) -> list[str]:
        value = json.loads(self.argument)
        assert isinstance(value, list), self
        assert all(isinstance(v, str) for v in value), self
        return value


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; ``stage`` counts
    FROM lines (0 before the first)."""
    instructions: list[Instruction] = []
    stage = 0
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        full = (buffer + line).strip()
        buffer = ""
        keyword, _, argument = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(argument.split()), stage))
    assert not buffer, "dangling line continuation"
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _final(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.keyword == keyword and i.stage == last]


def test_every_stage_is_python_311_slim(dockerfile: list[Instruction]) -> None:
    stages = [i for i in dockerfile if i.keyword == "FROM"]
    assert len(stages) >= 1
    for stage in stages:
        image, _, digest = stage.argument.split()[0].partition("@")
        assert image == "python:3.11-slim"
        # Pinned: a tag can be re-pointed, a digest cannot.
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), stage.argument


def test_the_image_runs_as_a_non_root_user(dockerfile: list[Instruction]) -> None:
    users = _final(dockerfile, "USER")
    assert users, "no USER in the final stage: the image would run as root"
    user = users[-1].argument.split(":")[0]
    assert user not in ("root", "0")
    # Set after the last RUN/COPY: the process, not only part of the build, is unprivileged.
    last_run = max(n for n, i in enumerate(dockerfile) if i.keyword in ("RUN", "COPY"))
    assert dockerfile.index(users[-1]) > last_run


def test_entrypoint_is_the_console_script(dockerfile: list[Instruction]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    [entrypoint] = _final(dockerfile, "ENTRYPOINT")
    assert entrypoint.exec_form() == ["agora-events"]
    assert scripts["agora-events"] == "webhook.cli:main"


def test_default_command_is_the_webhook_on_all_interfaces(dockerfile: list[Instruction]) -> None:
    [cmd] = _final(dockerfile, "CMD")
    args = cmd.exec_form()
    assert args == ["webhook", "--bind", "0.0.0.0:8080"]
    assert_real_command(args)


def test_ports_and_health_check(dockerfile: list[Instruction]) -> None:
    exposed = {p for e in _final(dockerfile, "EXPOSE") for p in e.argument.split()}
    assert exposed == {"8080", "9102"}
    assert str(HandlerSettings.model_fields["metrics_port"].default) in exposed
    [check] = _final(dockerfile, "HEALTHCHECK")
    options, _, command = check.argument.partition("CMD ")
    probe = json.loads(command)
    assert probe[0] == "python"
    assert _probe_url(probe) == "http://127.0.0.1:8080/healthz"
    assert "curl" not in check.argument
    assert "wget" not in check.argument
    assert "--interval=" in options
    assert "--timeout=" in options


def test_only_runtime_dependencies_are_installed(dockerfile: list[Instruction]) -> None:
    installs = [i for i in dockerfile if i.keyword == "RUN" and "pip install" in i.argument]
    assert len(installs) == 1
    argv = installs[0].argument.split()
    assert argv[argv.index("-c") + 1] == "constraints.txt"
    assert argv[-1] == "."
    assert not any("[dev]" in a or a in ("-e", "--editable") for a in argv)


# --- build context -------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(include, pattern) in file order; Docker applies the last pattern that matches."""
    found = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**", index):
                regex += ".*"
                index += 2
                if pattern.startswith("/", index):
                    regex += "/?"
                    index += 1
                continue
            char = pattern[index]
            regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
            index += 1
        found.append((include, re.compile(regex)))
    return found


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the repository) with the build context."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    keep = True
    for include, pattern in dockerignore_patterns():
        if any(pattern.fullmatch(p) for p in prefixes):
            keep = include
    return keep


def _copied_sources(instructions: list[Instruction]) -> Iterator[str]:
    for instruction in instructions:
        if instruction.keyword != "COPY" or "--from=" in instruction.argument:
            continue
        words = [w for w in instruction.argument.split() if not w.startswith("--")]
        yield from words[:-1]


def test_copied_files_exist_and_are_in_the_build_context(dockerfile: list[Instruction]) -> None:
    sources = list(_copied_sources(dockerfile))
    assert {"pyproject.toml", "constraints.txt", "webhook", "handlers"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert in_build_context(source), f"{source} is excluded by .dockerignore"
    # pyproject's readme is read by the build.
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in sources


def test_build_context_leaves_out_local_state() -> None:
    for path in (".venv/bin/python", ".kafka/libs/kafka.jar", ".git/HEAD", "tests/conftest.py",
                 "webhook/__pycache__/app.cpython-311.pyc", "docker/.env"):
        assert not in_build_context(path), path
    for path in ("webhook/app.py", "handlers/runtime/runner.py", "webhook/shared/samples/1_x.json"):
        assert in_build_context(path), path


def test_the_package_data_is_inside_the_copied_trees() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    for package, patterns in package_data.items():
        for pattern in patterns:
            for path in (ROOT / package).glob(pattern):
                assert in_build_context(str(path.relative_to(ROOT))), path


# --- the YAML files ------------------------------------------------------------------------------

YAML_FILES = [COMPOSE_FILE, PROMETHEUS_FILE, ROOT / "docs" / "monitoring" / "alerts.yml",
              DOCKER / "alertmanager.yml",
              *sorted((DOCKER / "grafana" / "provisioning").rglob("*.yml"))]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_each_yaml_file_is_one_mapping(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


# --- compose: the webhook's disk spool -----------------------------------------------------------


def test_the_spool_is_on_a_named_volume_the_image_user_owns(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    webhook = services["webhook"]
    spool_dir = webhook["environment"]["AGORA_WEBHOOK_SPOOL_DIR"]
    mounts = dict(volume.split(":", 1)[::-1] for volume in webhook["volumes"])
    # A named volume survives the container: a restarted webhook drains what was left.
    assert mounts[spool_dir] in compose["volumes"]
    dockerfile = DOCKERFILE.read_text()
    assert f"chown 10001:10001 {spool_dir}" in dockerfile
    assert "USER 10001:10001" in dockerfile


# --- compose: the monitoring profile (Prometheus, Alertmanager, Grafana) -------------------------

MONITORING = ("prometheus", "alertmanager", "grafana")
ALERTMANAGER_FILE = DOCKER / "alertmanager.yml"
GRAFANA_PROVISIONING = DOCKER / "grafana" / "provisioning"


def _mounts(service: dict[str, Any], compose: dict[str, Any]) -> dict[str, Path | str]:
    """Container path -> the host path of a bind mount, or the name of a named volume."""
    found: dict[str, Path | str] = {}
    for volume in service["volumes"]:
        host, container = volume.split(":")[:2]
        if host.startswith("."):
            found[container] = (DOCKER / host).resolve()
        else:
            assert host in compose["volumes"], f"{host} is not a declared volume"
            found[container] = host
    return found


def _port(entry: str) -> tuple[str, int]:
    host, _, container = entry.rpartition(":")
    return host, int(container)


def test_monitoring_services_are_only_in_the_monitoring_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in MONITORING:
            assert service["profiles"] == ["monitoring"], name
            assert "build" not in service, f"{name} runs a published image"
            # A release tag, pinned by digest.
            assert re.fullmatch(r"[a-z/]+:v?[0-9]+\.[0-9]+\.[0-9]+@sha256:[0-9a-f]{64}",
                                service["image"]), name
            for entry in service["ports"]:
                assert entry.startswith("127.0.0.1:"), f"{name}: {entry} is not loopback only"
            assert service["healthcheck"]["test"][:2] == ["CMD", "wget"], name
        else:
            assert service.get("profiles") in (None, ["recording"], ["operator"]), name


def test_every_bind_mount_of_the_profile_exists(
    compose: dict[str, Any], services: dict[str, dict[str, Any]],
) -> None:
    secrets = DOCKER / "alertmanager-secrets"
    for name in MONITORING:
        for container, host in _mounts(services[name], compose).items():
            if isinstance(host, Path):
                assert host.exists(), f"{name}: {host} is mounted at {container} but missing"
    # The sink secrets directory ships only its README; the values are never committed.
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "docker/alertmanager-secrets/*" in ignored
    assert "!docker/alertmanager-secrets/README.md" in ignored
    assert (secrets / "README.md").is_file()


def test_prometheus_sends_alerts_to_the_alertmanager_service(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    [manager] = config["alerting"]["alertmanagers"]
    [static] = manager["static_configs"]
    [target] = static["targets"]
    host, port = target.split(":")
    assert host == "alertmanager"
    assert host in services
    alertmanager = services["alertmanager"]
    assert [_port(p)[1] for p in alertmanager["ports"]] == [int(port)]
    assert _probe_url(alertmanager["healthcheck"]["test"]).endswith(f":{port}/-/healthy")
    assert "alertmanager" in services["prometheus"]["depends_on"]


def _receiver_kinds(receiver: dict[str, Any]) -> set[str]:
    return {key for key in receiver if key.endswith("_configs")}


def _route_receivers(route: dict[str, Any]) -> Iterator[str]:
    yield route["receiver"]
    for child in route.get("routes", []):
        yield from _route_receivers(child)


def test_alertmanager_routes_to_webhook_slack_and_pagerduty(
    compose: dict[str, Any], services: dict[str, dict[str, Any]],
) -> None:
    alertmanager = services["alertmanager"]
    mounts = _mounts(alertmanager, compose)
    config_flag = next(a for a in alertmanager["command"] if a.startswith("--config.file="))
    assert mounts[config_flag.split("=", 1)[1]] == ALERTMANAGER_FILE
    secrets_dir = next(c for c, h in mounts.items() if h == DOCKER / "alertmanager-secrets")

    config = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    routed = set(_route_receivers(config["route"]))
    assert routed == set(receivers), "every receiver is routed to, every route has a receiver"
    kinds = {name: _receiver_kinds(r) for name, r in receivers.items()}
    assert sorted(k for ks in kinds.values() for k in ks) == [
        "pagerduty_configs", "slack_configs", "webhook_configs"]
    # Severities: critical pages, warning and critical reach the chat, everything the hook.
    by_kind = {k: name for name, ks in kinds.items() for k in ks}
    children = {c["receiver"]: c for c in config["route"]["routes"]}
    assert "matchers" not in children[by_kind["webhook_configs"]]
    assert children[by_kind["pagerduty_configs"]]["matchers"] == ['severity="critical"']
    assert "warning" in children[by_kind["slack_configs"]]["matchers"][0]
    # Secrets are files under the mounted directory, never values in the config.
    secret_fields = {"webhook_configs": "url_file", "slack_configs": "api_url_file",
                     "pagerduty_configs": "routing_key_file"}
    for name, receiver in receivers.items():
        for kind in _receiver_kinds(receiver):
            for entry in receiver[kind]:
                assert entry[secret_fields[kind]].startswith(secrets_dir + "/"), (name, kind)
                assert not {"url", "api_url", "routing_key", "service_key"} & set(entry)
                assert entry["send_resolved"] is True
    # Each notification carries the runbook link of the alert rule.
    assert "runbook_url" in receivers[by_kind["slack_configs"]]["slack_configs"][0]["text"]
    pager = receivers[by_kind["pagerduty_configs"]]["pagerduty_configs"][0]
    assert pager["links"][0]["href"] == "{{ .CommonAnnotations.runbook_url }}"
    # The severities routed on are the ones the rules use.
    rules = yaml.safe_load((ROOT / "docs" / "monitoring" / "alerts.yml").read_text())
    used = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    assert used <= {"critical", "warning"}


def test_grafana_provisions_the_prometheus_source_and_the_dashboard(
    compose: dict[str, Any], services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    mounts = _mounts(grafana, compose)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_PROVISIONING
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] is None, "passed through"

    datasources = GRAFANA_PROVISIONING / "datasources" / "prometheus.yml"
    [source] = yaml.safe_load(datasources.read_text())["datasources"]
    prometheus_port = _port(services["prometheus"]["ports"][0])[1]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    assert source["isDefault"] is True

    providers = GRAFANA_PROVISIONING / "dashboards" / "agora-events.yml"
    [provider] = yaml.safe_load(providers.read_text())["providers"]
    folder = provider["options"]["path"]
    dashboards = {c: h for c, h in mounts.items() if c.startswith(folder + "/")}
    assert list(dashboards.values()) == [ROOT / "docs" / "monitoring" / "dashboard.json"]
    dashboard = json.loads((ROOT / "docs" / "monitoring" / "dashboard.json").read_text())
    assert dashboard["uid"]
    # The panels use the ${datasource} variable, which picks the default Prometheus source.
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", source["type"])
    uids = {t.get("datasource", {}).get("uid") for p in dashboard["panels"]
            for t in p.get("targets", [])}
    assert uids == {"${datasource}"}
    assert "prometheus" in grafana["depends_on"]
