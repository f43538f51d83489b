"""The worker hooks of webhook.gunicorn_conf."""

from __future__ import annotations

import gc

from webhook import gunicorn_conf


def test_a_worker_freezes_what_it_loaded_so_full_collections_skip_it() -> None:
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(object())
        # At least every module this test process imported (the worker's app, in gunicorn).
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
