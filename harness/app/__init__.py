"""The reference subscription service: the system under test on the testbed and for new clusters.

`api.create_app` builds the ASGI app, `server.serve` runs it under uvicorn, `launcher`
starts it as a child process (for the harness and for tests).
"""
