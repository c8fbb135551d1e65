"""The composition root: `nfactory`'s commands, and the wiring from settings to a
running worker (database, factories, engine, the board, the worker's endpoints and
views). The only place that imports integrations/; nothing outside it imports it."""
