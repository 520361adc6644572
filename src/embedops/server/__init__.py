"""The embedops HTTP service: ``create_app(settings)`` builds the FastAPI app."""

from embedops.server.app import create_app

__all__ = ["create_app"]
