"""The simulated Kubernetes API, served at the root of its own port as a real apiserver is.

Modules: `resources` (the kinds served, and the one way objects change in the store), `api` (CRUD,
patches, finalizers, lists: the `KubeApi` service), `auth` (tokens and RBAC: 401 and 403), `discovery`,
`watch`, `namespaces` (the namespace controller), `kubelet` (pods' graceful deletion), `validation`
(names, field selectors), `selectors`, `patches` and `errors`. This package imports none of them itself,
so the OpenShift behaviours can use `resources` while `api` uses the behaviours.
"""
