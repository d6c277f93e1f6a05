"""The HTTP API and web pages, served inside the daemon's event loop by daemon/api/server.py (h11)."""

import pydantic

# FastAPI defines 37 pydantic models of the OpenAPI document (fastapi.openapi.models) when it is imported, and
# pydantic builds each one's validator and serializer then (~1.2 MB of RSS). They serve /openapi.json and
# /api/docs, which an installer opens now and then. Models defined while FastAPI is first imported build on
# first use instead (`defer_build`); every model defined after, the daemon's own included, builds as before.
_config = pydantic.BaseModel.model_config
pydantic.BaseModel.model_config = {**_config, "defer_build": True}
try:
    import fastapi  # noqa: F401
finally:
    pydantic.BaseModel.model_config = _config

from daemon.api.app import create_app  # noqa: E402

__all__ = ["create_app"]
