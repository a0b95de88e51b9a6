"""One short TCP probe, so that an offline machine gets its answer in seconds.

Client libraries (huggingface_hub for matgl, mp-api) retry for a minute or more when the network is
down; probing first keeps `--potential auto` and `--db mp` within a few seconds offline.
"""

from __future__ import annotations

import socket

PROBE_SECONDS = 2.0


def tcp_reachable(host: str, port: int = 443, timeout: float = PROBE_SECONDS) -> bool:
    """True when a TCP connection to host:port opens within the timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
