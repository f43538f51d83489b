"""Which Cloud Recording hosts to try, in order (reference/agora-facts.md 2.1), and
whether a transport error was a failed name lookup (the one error after which Agora
advises the other primary domain rather than the regional host). Pure."""

from __future__ import annotations

import socket

from handlers.recording.errors import RecordingNotConfigured

PRIMARY_HOSTS = ("api.sd-rtn.com", "api.agora.io")
REGIONS = ("us-west-1", "us-east-1", "ap-southeast-1", "ap-northeast-1", "eu-west-1",
           "eu-central-1", "cn-east-1", "cn-north-1")


def failover_bases(api_base: str, region: str | None = None,
                   fallbacks: str | None = None) -> tuple[str, ...]:
    """The hosts to try, in order (facts 2.1): the configured primary, the other primary
    domain, then the regional host of ``region`` under the primary's domain. An explicit
    ``fallbacks`` list (comma-separated) replaces the derived ones. Pure."""
    primary = api_base.rstrip("/")
    if fallbacks is not None:
        extra = [b.strip().rstrip("/") for b in fallbacks.split(",") if b.strip()]
        return tuple(dict.fromkeys([primary, *extra]))
    scheme, _, host = primary.partition("://")
    if host not in PRIMARY_HOSTS:
        return (primary,)  # a custom host: only what the operator lists
    other = PRIMARY_HOSTS[1 - PRIMARY_HOSTS.index(host)]
    bases = [primary, f"{scheme}://{other}"]
    if region is not None:
        if region not in REGIONS:
            raise RecordingNotConfigured(
                f"AGORA_API_REGION must be one of {', '.join(REGIONS)}; got {region!r}")
        domain = host.removeprefix("api.")
        bases.append(f"{scheme}://api-{region}.{domain}")
    return tuple(bases)


def host_of(base: str) -> str:
    return base.partition("://")[2].split("/", 1)[0]


def is_dns_failure(exc: BaseException) -> bool:
    """Whether a transport error is a failed name lookup (``socket.gaierror`` in its
    chain, or the resolver's message)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        text = str(seen)
        if "Name or service not known" in text or "nodename nor servname" in text \
                or "getaddrinfo failed" in text or "No address associated" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
