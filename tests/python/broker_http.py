"""What tests read from a broker's HTTP listener (metrics.listener)."""

from __future__ import annotations

import urllib.error
import urllib.request


def metric(port: int, name: str) -> float:
    """The value of an unlabelled metric in `/metrics`."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [line.split()[-1] for line in body.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} in /metrics: {values}"
    return float(values[0])


def ready_status(port: int) -> int:
    """The HTTP status of `/ready`."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code
