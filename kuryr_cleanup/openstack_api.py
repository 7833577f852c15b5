"""OpenStack access: raw listings, lookups and writes, on openstacksdk's authentication and catalog.

openstacksdk builds a Resource object per listed item (about 3.5 ms per Neutron port measured here:
70 s for 20,000 ports); the tool only needs the JSON the API sent. A request through a proxy (a
keystoneauth adapter) still costs ~0.6 ms of Python per call (endpoint filter, user agent, request
and response logging, statistics hooks, then requests' own preparation), as much as the cloud's own
work on a fast path. So the hot path is a `RawClient`: the service's endpoint as the proxy resolved it
(overrides honoured), the token headers from the keystoneauth session (which renews the token before
it expires), and a plain request on a urllib3 pool of kept-alive connections sized to the concurrency
(context.py), ~0.15 ms. openstacksdk
stays in charge of authentication, the catalog and token renewal. Errors are raised as keystoneauth
raises them, so the retry policy classifies them as before.

Every request holds a slot of its service's limit (adaptive.py): `--concurrency` bounds the calls in
flight, and each service gets what it can take. Pagination follows the `<collection>_links` "next"
links that Neutron, Octavia and Nova send when a `limit` is given.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import certifi
import requests
import urllib3
import urllib3.exceptions as u3
from keystoneauth1 import exceptions as ksa_exc

from kuryr_cleanup import __version__
from kuryr_cleanup.adaptive import UNLIMITED, Limits
from kuryr_cleanup.compact import compact
from kuryr_cleanup.retrying import RetryPolicy, call, http_status

USER_AGENT = f"kuryr-migrate/{__version__}"

# The catalog's names of the services, as the simulator's log and the limits call them.
SERVICE_NAMES = {"network": "network", "load_balancer": "load-balancer", "compute": "compute"}


@dataclass
class Answer:
    """A response's status, headers and body."""

    status: int
    headers: Any
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def _tls_options(session: Any) -> dict[str, Any]:
    """TLS settings as requests would apply the keystoneauth session's `verify` and `cert`."""
    verify = getattr(session, "verify", True)
    if verify is True:  # requests honours these variables too
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    options: dict[str, Any] = {}
    if verify is False:
        options["cert_reqs"] = "CERT_NONE"
    else:
        options["cert_reqs"] = "CERT_REQUIRED"
        if isinstance(verify, str) and os.path.isdir(verify):
            options["ca_cert_dir"] = verify
        else:
            options["ca_certs"] = verify if isinstance(verify, str) else certifi.where()
    cert = getattr(session, "cert", None)
    if isinstance(cert, (tuple, list)):
        options["cert_file"], options["key_file"] = cert[0], cert[1]
    elif cert:
        options["cert_file"] = cert
    return options


class RawClient:
    """Plain HTTP on a pool of kept-alive connections, with openstacksdk's token and endpoints.

    urllib3 directly: a request through requests costs ~400 us of Python (environment proxy lookup,
    cookies, hooks, request preparation), through urllib3 ~150 us. Proxies from the environment and
    the session's TLS settings are applied as requests would apply them.
    """

    def __init__(self, conn: Any, pool_size: int = 24) -> None:
        self.conn = conn
        self.session = conn.session  # keystoneauth: token, renewal, catalog
        self.pool_size = pool_size  # context.py sets it to the concurrency before the first request
        self.limits: Limits = UNLIMITED
        self._endpoints: dict[str, str] = {}
        self._managers: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        timeout = getattr(conn.session, "timeout", None)
        # The cloud's api_timeout when clouds.yaml sets one; else bounded all the same (a black-holed
        # request must not hold a worker, nor Ctrl-C, for ever): 30 s to connect, 120 s to answer.
        self.timeout = (urllib3.Timeout(connect=timeout, read=timeout) if timeout
                        else urllib3.Timeout(connect=30.0, read=120.0))

    def endpoint(self, service: str) -> str:
        url = self._endpoints.get(service)
        if url is None:
            with self._lock:
                # The proxy's endpoint honours <service>_endpoint_override and version discovery.
                url = self._endpoints[service] = str(getattr(self.conn, service).get_endpoint()).rstrip("/")
        return url

    def _manager(self, url: str) -> urllib3.PoolManager:
        origin = url.split("/", 3)[2] if "://" in url else url
        manager = self._managers.get(origin)
        if manager is None:
            with self._lock:
                manager = self._managers.get(origin)
                if manager is None:
                    options = {"num_pools": 4, "maxsize": self.pool_size, "retries": False,
                               **_tls_options(self.session)}
                    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
                    manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
                    self._managers[origin] = manager
        return manager

    def request(self, service: str, method: str, path: str, params: Any = None, body: Any = None) -> Answer:
        url = path if "://" in path else self.endpoint(service) + path
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        name = SERVICE_NAMES.get(service, service)
        manager = self._manager(url)
        for attempt in range(2):
            headers.update(self.session.get_auth_headers() or {})
            with self.limits.slot(name) as answered:
                try:
                    resp = manager.request(method, url, body=data, headers=headers, timeout=self.timeout,
                                           redirect=False)
                except u3.SSLError as exc:
                    raise ksa_exc.SSLError(f"SSL exception connecting to {url}: {exc}") from exc
                except u3.TimeoutError as exc:
                    raise ksa_exc.ConnectTimeout(f"Request to {url} timed out") from exc
                except u3.HTTPError as exc:
                    raise ksa_exc.ConnectFailure(f"Unable to establish connection to {url}: {exc}") from exc
                answered(resp.status)
            if resp.status == 401 and attempt == 0:
                self.session.invalidate()  # the token was revoked or expired early: get a new one, once
                continue
            break
        if resp.status >= 400:
            raise ksa_exc.from_response(_requests_response(resp, url), method, url)
        return Answer(resp.status, resp.headers, resp.data)


def _requests_response(resp: Any, url: str) -> requests.Response:
    """An error answer as keystoneauth's exceptions carry it (the retry policy reads its status, its
    Retry-After header and the service's error body from there)."""
    out = requests.Response()
    out.status_code = resp.status
    out.headers = requests.structures.CaseInsensitiveDict(resp.headers)
    out._content = resp.data
    out.reason = resp.reason
    out.url = url
    out.encoding = "utf-8"
    return out


_clients: weakref.WeakKeyDictionary[Any, RawClient] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def client(conn: Any) -> RawClient:
    """The connection's raw client (one per connection, shared by every worker)."""
    found = _clients.get(conn)  # every write asks: no lock once it exists
    if found is not None:
        return found
    with _clients_lock:
        found = _clients.get(conn)
        if found is None:
            found = _clients[conn] = RawClient(conn)
        return found


PAGE_SIZE = 1000
ID_BATCH = 80  # ids per filtered listing: keeps URLs well under common 8 KiB limits


def chunks(values: list[str], size: int = ID_BATCH) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def list_raw(conn: Any, service: str, path: str, key: str, policy: RetryPolicy,
             params: dict[str, Any] | None = None, page_size: int = PAGE_SIZE,
             keep: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Every item of a collection as the API's JSON. List values in `params` are sent as repeated
    parameters, which Neutron reads as "any of" (network_id=a&network_id=b). With `keep`, items are
    CompactRecords with those fields at hand (for listings held until the run ends)."""
    raw_client = client(conn)
    query: dict[str, Any] | None = {**(params or {}), "limit": page_size}
    url = path
    out: list[dict[str, Any]] = []
    while url:
        def get(url: str = url, query: dict[str, Any] | None = query) -> Any:
            return raw_client.request(service, "GET", url, params=query)

        body = call(policy, get, retry_conflicts=False).json()
        out.extend(compact(body.get(key) or [], keep))
        url = next((link["href"] for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"), "")
        query = None  # the next link carries the whole query, marker included
    return out


def list_by_ids(conn: Any, service: str, path: str, key: str, policy: RetryPolicy,
                ids: set[str]) -> dict[str, dict[str, Any]]:
    """Resources by id, a batch of ids per listing: ids an earlier run recorded may number in the
    thousands, and most are gone on a re-run (one GET each would make reads grow with them).
    Neutron only: Octavia has no "any of these ids" filter (a real Octavia 19 answers 500)."""
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(ids)):
        wanted = set(batch)
        # Kept to the ids asked for, whatever the service made of the filter.
        found.update({r["id"]: r for r in list_raw(conn, service, path, key, policy, {"id": batch})
                      if r["id"] in wanted})
    return found


def get_one(conn: Any, service: str, path: str, key: str, policy: RetryPolicy) -> dict[str, Any] | None:
    """One resource by its path (e.g. /ports/<id>), or None when it does not exist (404). By id only:
    openstacksdk's find_* would fall back to a lookup by name, which could match someone else's."""
    raw_client = client(conn)
    try:
        body = call(policy, lambda: raw_client.request(service, "GET", path).json(), retry_conflicts=False)
    except Exception as exc:
        if http_status(exc) == 404:
            return None
        raise
    return body.get(key) if key else body


def send(conn: Any, service: str, method: str, path: str, body: Any = None,
         params: dict[str, Any] | None = None) -> Any:
    """One write; errors are raised (keystoneauth's HttpError family) for the caller's retry policy to
    classify. Returns the decoded body, if any."""
    resp = client(conn).request(service, method, path, params=params or None, body=body)
    return resp.json() if resp.content else None


def octavia_version(conn: Any, policy: RetryPolicy) -> tuple[int, int]:
    """The highest Octavia API version the endpoint supports (tags need 2.5)."""

    def fetch() -> tuple[int, int]:
        # The proxy's endpoint honours load_balancer_endpoint_override; the session's catalog
        # lookup would not (with auth_type none it would answer Neutron's URL).
        endpoint = conn.load_balancer.get_endpoint()
        root = endpoint.rstrip("/")
        for suffix in ("/v2.0", "/v2"):
            if root.endswith(suffix):
                root = root[: -len(suffix)]
        resp = conn.session.get(root + "/", endpoint_filter=None, raise_exc=True)
        best = (2, 0)
        for version in (resp.json().get("versions") or []):
            vid = str(version.get("id", "")).lstrip("v")
            try:
                major, minor = (int(x) for x in vid.split(".")[:2])
            except ValueError:
                continue
            best = max(best, (major, minor))
        return best

    return call(policy, fetch, retry_conflicts=False)


def raw(resource: Any) -> dict[str, Any]:
    """An openstacksdk resource as the API's own JSON (attribute names as the service sends them)."""
    if isinstance(resource, dict):
        return resource
    data = resource.to_dict(headers=False, computed=False, original_names=True)
    data.pop("location", None)
    return dict(json.loads(json.dumps(data, default=str)))
