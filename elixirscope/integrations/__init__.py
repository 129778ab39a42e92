"""Integrations: what libraries a program uses do, recorded as trace events
(databases: ``sqlite``, ``sqlalchemy``, ``psycopg``; the runtime's pub/sub: ``pubsub``)."""
