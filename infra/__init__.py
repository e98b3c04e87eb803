"""CDK infrastructure. ``build_app`` is the one composition root; ``app.py`` only calls it."""

from infra.app import build_app

__all__ = ["build_app"]
