"""Cloud Recording control: the REST client (``client``), typed requests and responses
(``models``), error advice (``errors``), start-request validation (``validation``) and RTC
tokens for the recording bot (``tokens``).

Kept import-free so the CLI does not load the handler runtime's modules.
"""
