"""The reference subscription service: the system under test on the testbed and for new clusters.

`api.create_app` builds the ASGI app, `server.serve` runs it under uvicorn (`server.prepare_database`
creates its schema first), `launcher` starts it as a child process (for the harness and for tests),
`settings.AppSettings` is what every worker is started with.

The public modules are not imported here: `from harness.app import launcher` loads the launcher
without FastAPI and the database layer.
"""

__all__ = ["api", "launcher", "server", "settings"]
