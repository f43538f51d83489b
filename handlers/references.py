"""``${NAME}`` references: the one resolver of the project.

Two places hold references: the rules file (written by the operator, resolved when it is
loaded) and recording requests (profiles and registry records, resolved in memory right
before a request is sent). Both resolve through :func:`resolve`; a :class:`Policy` says
what a source may refer to.

Registry records can be written by any application that can produce to the sessions
topic, so their references are held to a strict policy (:func:`request_policy`):

- only names the operator allows in the rules file (``[recording] allow_references``,
  plus every name the rules file's profiles use);
- only as the *whole* value of a credential field (named like a secret,
  :mod:`handlers.secret_names`: ``accessKey``, ``secretKey``, ``stsToken``, ``token``...),
  never inside another string, where a resolved secret could end up in a file name, a page
  URL or an error message;
- never the service's own credentials (:data:`SERVICE_CREDENTIALS`), whatever the rules
  file allows: a storage key field set to ``${AGORA_CUSTOMER_SECRET}`` would hand the
  secret to whoever owns the bucket.

Refusals raise :class:`ReferenceRefused` naming the field and the variable, never a
value; an unset variable raises :class:`MissingReference`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.secret_names import is_secret_name

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

SERVICE_CREDENTIALS = re.compile(
    r"^(AGORA_CUSTOMER_SECRET|AGORA_CUSTOMER_ID|AGORA_APP_CERTIFICATE|AGORA_NCS_SECRETS?"
    r"|KAFKA_\w*PASSWORD\w*|WHITEBOARD_TOKEN|WHITEBOARD_SECRET_ACCESS_KEY|WHITEBOARD_ACCESS_KEY)$"
)
"""The service's own credentials: never the value of a reference."""


class ReferenceProblem(Exception):
    """A reference that cannot be resolved. ``where`` is the field's path, ``name`` the
    variable; the message never carries a value."""

    def __init__(self, name: str, where: str, problem: str) -> None:
        super().__init__(name)
        self.name = name
        self.where = where
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


class MissingReference(ReferenceProblem, KeyError):
    """The referenced environment variable is not set."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(name, where, f"environment variable {name} is not set")


class ReferenceRefused(ReferenceProblem, ValueError):
    """The reference is not allowed here (see the module documentation)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What references a source may hold. ``allowed``: the variable names it may use
    (``None``: any); ``credentials_only``: only as the whole value of a credential
    field. The service's own credentials are refused under every policy."""

    allowed: frozenset[str] | None = None
    credentials_only: bool = False


RULES_FILE = Policy()
"""The operator's own file: any variable but the service's credentials, anywhere."""


def request_policy(allowed: frozenset[str] | set[str]) -> Policy:
    """The policy of recording requests (profiles and registry records)."""
    return Policy(allowed=frozenset(allowed), credentials_only=True)


def names(value: Any) -> set[str]:
    """Every variable name referenced anywhere in a JSON value."""
    if isinstance(value, str):
        return set(REFERENCE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(names(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(names(v) for v in value)) if value else set()
    return set()


def check(value: Any, where: str, policy: Policy, env: Mapping[str, str] | None = None,
          *, field: str | None = None) -> None:
    """Raise for the first reference in ``value`` that ``policy`` refuses (or, with
    ``env``, whose variable is unset). Reads no value of ``env``."""
    if isinstance(value, str):
        for name in REFERENCE.findall(value):
            _check_name(name, where, policy)
            if policy.credentials_only:
                if field is None or not is_secret_name(field):
                    raise ReferenceRefused(
                        name, where, f"references like ${{{name}}} are only allowed as the "
                        "whole value of a credential field (accessKey, secretKey, stsToken, "
                        "token...)")
                if not _WHOLE.fullmatch(value):
                    raise ReferenceRefused(
                        name, where, f"must be exactly ${{{name}}}, nothing around it")
            if env is not None and name not in env:
                raise MissingReference(name, where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check(item, f"{where}.{key}", policy, env, field=str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check(item, f"{where}[{i}]", policy, env, field=None)


def _check_name(name: str, where: str, policy: Policy) -> None:
    if SERVICE_CREDENTIALS.match(name):
        raise ReferenceRefused(
            name, where, f"${{{name}}} is one of the service's own credentials and is never "
            "resolved into a request or a rule")
    if policy.allowed is not None and name not in policy.allowed:
        raise ReferenceRefused(
            name, where, f"${{{name}}} is not allowed: list it in [recording] "
            "allow_references of the rules file, or use it in a profile")


def resolve(value: Any, env: Mapping[str, str], where: str, policy: Policy = RULES_FILE
            ) -> Any:
    """A copy of a JSON value with every ``${NAME}`` replaced by ``env[NAME]``, after
    :func:`check` passed. Call it right before use; never store or log the result."""
    check(value, where, policy, env)
    return _substitute(value, env)


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(v, env) for v in value]
    return value
