"""The simulated Kubernetes API, served at the root of its own port as a real apiserver is.

Modules: `resources` (the kinds served, and the one way objects change in the store), `api` (CRUD,
patches, finalizers, lists: the `KubeApi` service), `discovery`, `watch`, `namespaces` (namespace
deletion), `selectors`, `patches` and `errors`. This package imports none of them itself, so the
OpenShift behaviours can use `resources` while `api` uses the behaviours.
"""
