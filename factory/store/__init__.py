"""The store: the schema and every SQL statement, as named functions, one module per concern.

SQL lives here and nowhere else (ruff's banned-api list in pyproject.toml and
tests/unit/test_sql_boundary.py fail `make test` otherwise; intake.py is exempt until
issue 11 moves its SQL here). Outside this package, code holds a `sqlalchemy.Engine`
(or a `Connection` from it, for a transaction spanning several functions) and calls these:

- tables: the schema. db: engines, migrations, ping.
- repo: tasks, runs, transitions, workspaces, cancel requests.
- outbox: the effects' status lifecycle, and what a card shows (question, log section).
- leases, progress, replies, budget, identity, boards (intake bookkeeping),
  local_comments (the local board's threads), counts (live view, /metrics),
  webhook_events (redeliveries).
"""
