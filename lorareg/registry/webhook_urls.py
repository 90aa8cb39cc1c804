"""Webhook target checks: a registry must not become a proxy into its own network (SSRF).

A URL is accepted only when (1) its scheme is ``http`` or ``https``; (2) it carries no credentials
(``user:pass@``: they would sit in the database and in logs); (3) it has a host, and every address that
host resolves to is a public one — private (RFC 1918, ULA), loopback, link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified addresses are refused unless the operator allowed
them with ``LORAREG_WEBHOOK_ALLOW``: a comma-separated list of ``loopback``, ``private``, ``link-local``
and CIDR blocks (``10.20.0.0/16``). The check runs at registration and again before every delivery, since
a name can be re-pointed after it was registered (DNS rebinding); the remaining window between that
lookup and the connection is documented in ``docs/studio.md``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from lorareg.errors import InputError

MAX_URL_CHARS = 2000
KEYWORDS = ("loopback", "private", "link-local")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class WebhookAllow:
    """What ``LORAREG_WEBHOOK_ALLOW`` permits beyond public addresses (nothing by default)."""

    keywords: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> WebhookAllow:
        """Parse ``loopback,private,10.0.0.0/8``; InputError naming a bad entry."""
        keywords: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry in KEYWORDS:
                keywords.add(entry)
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as e:
                raise InputError(
                    f"LORAREG_WEBHOOK_ALLOW entry {entry[:60]!r} is neither one of {', '.join(KEYWORDS)} "
                    "nor a CIDR block"
                ) from e
        return cls(frozenset(keywords), tuple(networks))

    def permits(self, address: IPAddress) -> bool:
        if any(address in network for network in self.networks):
            return True
        if address.is_loopback:
            return "loopback" in self.keywords
        if address.is_link_local:
            return "link-local" in self.keywords
        if address.is_private and not address.is_unspecified and not address.is_reserved:
            return "private" in self.keywords
        return False


def check_webhook_url(url: str, *, allow: WebhookAllow) -> str:
    """Return ``url`` when it may receive deliveries (rules in the module docstring).

    Raises:
        InputError: what is wrong with it, naming the refused address.
    """
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"webhook URL is {len(url)} characters; at most {MAX_URL_CHARS}")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise InputError(f"webhook URL {url[:80]!r} is malformed: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise InputError(f"webhook URL must be http or https, not {parts.scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "webhook URL must not carry credentials (user:password@); the signature authenticates"
        )
    if not parts.hostname:
        raise InputError(f"webhook URL {url[:80]!r} has no host")
    for address in _resolve(parts.hostname, port):
        if not address.is_global and not allow.permits(address):
            raise InputError(
                f"webhook host {parts.hostname} resolves to {address}, a {_kind(address)} address; "
                "allow it with LORAREG_WEBHOOK_ALLOW if this is intended"
            )
    return url


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(f"webhook host {host[:80]} does not resolve: {e}") from e
    return sorted({ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}, key=str)


def _kind(address: IPAddress) -> str:
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return "non-public"
