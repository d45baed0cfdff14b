"""Vortex operator: reconciles VortexFunction resources into code objects in MinIO and warm
runtime pods (Deployment, Service, NetworkPolicy, Secret `vf-<name>`), with kopf.

`python -m vortex_operator` runs it (see `__main__`); `handlers.py` holds the kopf handlers,
`controller.py` the reconciliation.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
