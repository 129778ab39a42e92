"""Integrations: what libraries a program uses do, recorded as trace events
(databases: ``sqlite``, ``sqlalchemy``, ``psycopg``; the runtime's pub/sub: ``pubsub``;
web requests and outgoing HTTP: ``asgi``, ``wsgi``, ``httpx_calls``, ``urllib3_calls``,
see README "Web requests and outgoing HTTP")."""
