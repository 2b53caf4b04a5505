"""The HTTP API of jsflow: external systems start workflows, send events and
resume waits with their tokens.

::

    from jsflow.host import WorkflowHost
    from jsflow.server import create_app

    host = WorkflowHost("sqlite:///app.db")
    app = create_app(host, api_keys=["s3cret"], public_url="https://flows.example.com")
    # uvicorn.run(app) -- or mount it in your own FastAPI/Starlette app

``jsflow serve`` runs the same app under uvicorn. The contract (paths,
status codes, error bodies, auth) is on the documentation site's HTTP API
reference page (docs/reference/http.md, generated from this app's OpenAPI
schema); a running server shows it at ``/docs``.
"""

from ._app import create_app
from ._errors import ERROR_STATUS, http_status
from ._settings import Scope, ServerSettings, generate_key, keys_from_env, parse_api_keys

__all__ = [
    "ERROR_STATUS",
    "Scope",
    "ServerSettings",
    "create_app",
    "generate_key",
    "http_status",
    "keys_from_env",
    "parse_api_keys",
]
