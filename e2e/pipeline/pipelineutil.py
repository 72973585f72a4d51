"""Helpers of the pipeline suites (stdlib only): a valid payment card number for the DLP
cases, a metrics reader, and polling for conditions the server reaches in the background."""

from __future__ import annotations

import time
import urllib.request

import pytest


def luhn_complete(prefix: str) -> str:
    """`prefix` plus its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


#: A Luhn-valid Visa number that is not one of the issuers' published test numbers.
CARD = luhn_complete("453914880343646")
assert CARD == "4539148803436467"


def metric(server, name: str, **labels: str) -> float:
    """The sum of the samples of `name` on `server`'s /metrics whose labels include `labels`."""
    url = f"http://{server.host}:{server.metrics_port}/metrics"
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in page.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_until(what: str, check, timeout: float = 20.0):
    """Polls `check()` every 0.2 s until it returns something true, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout}s")
