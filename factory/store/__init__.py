"""The store: the schema and every SQL statement, as named functions, one module per concern.

SQL lives here and nowhere else (ruff's banned-api list in pyproject.toml and
tests/unit/test_sql_boundary.py fail `make test` otherwise). Outside this package, code
holds a `Database` (db.py) and calls these; a transaction spanning several of them is
one of their own, or a function here that takes the connection:

- tables: the schema. db: engines, migrations, ping.
- repo: tasks, runs, transitions, workspaces, cancel requests.
- steps: a transition's write (the engine's hot path), on the driver's own cursor with
  statements compiled once (prepared), on the event loop's own SQLite connection where
  that cannot wait (loop_connection); trace counts what the database is sent.
- outbox: the effects' status lifecycle, and what a card shows (question, log section).
- leases, progress, replies, budget, identity, intake (the board's watermark, cards
  becoming tasks),
  local_comments (the local board's threads), counts (live view, /metrics),
  webhook_events (redeliveries).
"""
