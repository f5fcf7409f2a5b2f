"""A local fake of Salesloft's v2 REST API, for syncs that count as evidence.

Start it with ``python -m sandbox`` (see ``sandbox/__main__.py``) or from tests with
``sandbox.testing.running_sandbox``. Everything it knows about Salesloft lives in this package;
the engine in ``connector/`` knows nothing about it. See docs/sandbox.md.
"""
