"""Which webhook URLs the service will call: ``https://`` only (``http://`` with ``webhook_allow_http``), and
never a loopback, link-local, private or otherwise non-public address (unless ``webhook_allow_private``).

:func:`check_webhook_url` runs at registration (no DNS: the literal address and the scheme);
:func:`resolve_webhook` runs at every send: it resolves the host once, refuses the target if any address it
resolves to is refused, and returns the address to connect to (the request is pinned to it, so a second DNS
answer cannot move it to an internal address).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from forewarn.core.model import Party
from forewarn.errors import InvalidInput
from forewarn.service.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class WebhookPolicy:
    """What the settings allow (``webhook_allow_http``, ``webhook_allow_private``)."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class PinnedTarget:
    """Where one webhook request goes: the URL as registered, its host (for Host and TLS SNI) and the address
    it was resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def pinned_url(self) -> str:
        """The URL with its host replaced by the pinned address (IPv6 in brackets)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit((parts.scheme, f"{literal}:{self.port}", parts.path, parts.query, parts.fragment))

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def refused_address(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for flag in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{flag}"):
            return flag.replace("_", "-")
    if not address.is_global:
        return "not global"
    return None


def _split(url: str, policy: WebhookPolicy) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput(f"webhook URL {url!r} is not a valid URL") from exc
    if parts.scheme not in ("https", "http"):
        raise InvalidInput(f"webhook URL {url!r} must use https://")
    if parts.scheme == "http" and not policy.allow_http:
        raise InvalidInput(f"webhook URL {url!r} must use https:// (http:// needs the setting webhook_allow_http)")
    if not parts.hostname:
        raise InvalidInput(f"webhook URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"webhook URL {url!r} must not carry credentials")
    return parts


def check_webhook_url(url: str, policy: WebhookPolicy) -> None:
    """Refuse (InvalidInput) a URL the policy does not allow, judging what can be judged without DNS: the scheme,
    a literal address, ``localhost``."""
    parts = _split(url, policy)
    host = parts.hostname or ""
    if policy.allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput(f"webhook URL {url!r} targets loopback (needs the setting webhook_allow_private)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: judged on what it resolves to, at every send
    why = refused_address(address)
    if why is not None:
        raise InvalidInput(f"webhook URL {url!r} targets a {why} address (needs the setting webhook_allow_private)")


def pin(url: str, policy: WebhookPolicy, addresses: list[str]) -> PinnedTarget:
    """The target of ``url`` pinned to the first of ``addresses`` (what its host resolved to); InvalidInput when
    the policy refuses the URL or any of the addresses."""
    check_webhook_url(url, policy)
    parts = _split(url, policy)
    if not addresses:
        raise InvalidInput(f"webhook host {parts.hostname!r} resolved to no address")
    resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not policy.allow_private:
        for address in resolved:
            why = refused_address(address)
            if why is not None:
                raise InvalidInput(f"webhook host {parts.hostname!r} resolves to a {why} address ({address})")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return PinnedTarget(url=url, scheme=parts.scheme, host=parts.hostname or "", port=port, address=resolved[0])


def resolve_webhook(url: str, policy: WebhookPolicy) -> PinnedTarget:
    """Resolve ``url``'s host once (blocking DNS) and pin it (see :func:`pin`). OSError when DNS fails."""
    parts = _split(url, policy)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return pin(url, policy, list(dict.fromkeys(str(info[4][0]) for info in infos)))


def check_party_webhooks(party: Party, settings: Settings) -> None:
    """Refuse (InvalidInput) a party whose webhook URLs the settings do not allow (at registration)."""
    policy = WebhookPolicy(settings.webhook_allow_http, settings.webhook_allow_private)
    for url in (party.webhook_url, party.backup_webhook_url):
        if url is not None:
            check_webhook_url(url, policy)
