"""Fault rules as an admin writes them for `sim serve --faults`, and what they do on the wire."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from kuryr_cleanup.sim.faults import DROP, HANG, parse_faults


def test_short_form_and_json_mean_the_same_rules() -> None:
    short = parse_faults("network:DELETE:/v2.0/ports/*=503x3;load-balancer:*:*=429@0.1,retry-after=1;kube:*:*=drop")
    as_json = parse_faults(json.dumps([
        {"service": "network", "method": "DELETE", "path": "/v2.0/ports/*", "status": 503, "count": 3},
        {"service": "load-balancer", "status": 429, "probability": 0.1, "retry_after": 1},
        {"service": "kube", "status": DROP},
    ]))
    assert short == as_json
    assert parse_faults("compute:POST:*=hang")[0].status == HANG


@pytest.mark.parametrize("bad", ["network:DELETE=503", "network:DELETE:/x=abc", '[{"sevice": "network"}]'])
def test_a_bad_rule_is_refused_with_its_text(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_faults(bad)


def test_rules_fire_after_n_and_count_times_then_stop(sim: Any) -> None:
    sim.control("PUT", "faults", [{"service": "network", "method": "GET", "path": "/", "status": 503,
                                   "after": 1, "count": 2, "retry_after": 3}])
    url = sim.server.os_url + "/networking/"

    def status() -> tuple[int, str | None]:
        try:
            with urllib.request.urlopen(url) as resp:
                return resp.status, None
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Retry-After")

    assert [status() for _ in range(4)] == [(200, None), (503, "3"), (503, "3"), (200, None)]
    assert [r["status"] for r in sim.requests() if r["service"] == "network"] == [200, 503, 503, 200]
