"""The HTTP API and web pages, served by uvicorn inside the daemon's event loop."""

from daemon.api.app import create_app

__all__ = ["create_app"]
