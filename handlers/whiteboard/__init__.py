"""Whiteboard screenshot-list captures: the REST client (``client``), tokens (``tokens``),
the handler action (``action``) and the ``agora-events whiteboard`` commands (``cli``).

Kept import-free so the CLI does not load the handler runtime's modules.
"""
