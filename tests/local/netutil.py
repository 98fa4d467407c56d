"""This machine's addresses, for proving what is and is not reachable from outside loopback."""

from __future__ import annotations

import ipaddress
import socket
import subprocess

__all__ = ["non_loopback_address"]


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback, or None if it has none.

    Asks the routing table (a UDP ``connect`` sends nothing) and ``hostname -I``.
    """
    candidates: list[str] = []
    for probe in ("192.0.2.254", "10.255.255.254", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 9))
            except OSError:
                continue
            candidates.append(sock.getsockname()[0])
    try:
        output = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
        candidates += output.split()
    except (OSError, subprocess.SubprocessError):
        pass
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback and not address.is_unspecified:
            return candidate
    return None
