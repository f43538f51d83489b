"""The closing side of the REST clients (Cloud Recording, whiteboard): each owns one
``httpx.Client`` for its connection pool, closed by :meth:`close` or at the end of a
``with`` block."""

from __future__ import annotations

from typing import Self

import httpx


class ClosingHttpClient:
    """``close`` and the context-manager protocol of a client that owns ``_http``."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
