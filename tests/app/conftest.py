from daemons import make_daemon  # noqa: F401 - the fixture, shared by the app tests
