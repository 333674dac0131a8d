"""Liveness sessions: the server-chosen challenge, judged frame by frame.

- ``model``, ``transitions``, ``codec``: a session's data, its pure state machine (transitions given ``now``)
  and its plain-data form;
- ``service``: a frame's path around it (analyse, judge, compare, save conditionally, archive, audit);
- ``commit``: the conditional save with its retries, and the closing metric and audit record after it;
- ``routes``: the thin HTTP routes;
- ``store``: DynamoDB and file-backed session stores (conditional writes);
- ``keys``, ``audit``: a session's archive keys; its audit record.
"""
