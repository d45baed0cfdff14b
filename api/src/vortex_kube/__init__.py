"""What the API and the operator share about Kubernetes, defined once.

- `contract`: the VortexFunction resource (group, version, names, child names and labels, the spec
  with its defaults and bounds, the runtime image default).
- `podspec`: the one builder of runtime pod specs (warm, one-shot and pool pods), with one
  hardening.
- `errors` and `client`: the one Kubernetes client and its error tree; the only module that
  imports `kubernetes_asyncio`.

`vortex_api` and `vortex_operator` import this package; it imports neither (`.importlinter`).
"""
