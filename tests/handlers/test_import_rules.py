"""handlers/ruff.toml bans the webhook's ingest-service modules from handlers/ one by one
(ruff cannot ban a package except one subpackage), so a new service module must be added
there: this test fails until it is."""

from __future__ import annotations

import tomllib

from support.paths import ROOT


def test_every_ingest_service_module_is_banned_from_handlers() -> None:
    rules = tomllib.loads((ROOT / "handlers" / "ruff.toml").read_text())
    banned = set(rules["lint"]["flake8-tidy-imports"]["banned-api"])
    service = {f"webhook.{path.stem}" for path in (ROOT / "webhook").glob("*.py")
               if path.name != "__init__.py"}
    assert service, "no webhook modules found"
    assert service - banned == set()
    assert not any(name.startswith("webhook.shared") for name in banned)
