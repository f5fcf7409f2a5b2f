"""Fake APIs of other shapes than Salesloft's, to prove the engine general: each follows one real API.

- ``payments``: Stripe (Basic auth with the secret key, newest-first lists, ``starting_after``, form bodies,
  ``Idempotency-Key``);
- ``crm``: HubSpot CRM v3 (POST search with a 10,000-result cap, 207 multi-status batches);
- ``export``: Zendesk's time-based incremental export and Mixpanel's date-range event export (JSONL,
  late-arriving events);
- ``sessions``: a session-login API (login for a short-lived token, page numbers with a total, a cursor in a
  response header, per-item batch results).

Each runs as ``python -m sandbox.families.<name> --port N [--seed S] [--size K]`` and from tests as
``running_<name>(**options)`` (a subprocess on a free 127.0.0.1 port). ``common`` holds what they share:
the HTTP server, the request journal, the clock, fault injection and the ``/__control`` endpoints.
What each one emulates: docs/families.md.
"""
