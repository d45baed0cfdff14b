"""Vortex API gateway: deploy, execute, health and metrics over a local or Kubernetes backend.

`python -m vortex_api` (see `__main__`) serves local mode; `app.create_app` builds the ASGI app.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
