"""Where a function's `fetch` may go: its egress rules, and the addresses denied by default.

A rule (`spec.egress.allow`) is a host name, optionally `*.` and a suffix (its subdomains, not
the suffix itself), an IP address or a CIDR, each with an optional `:port` (IPv6 in brackets:
`[::1]:8080`). A request is allowed when a rule matches its host and port and every address the
host resolves to is allowed. Some addresses are denied unless a rule names them:

- `RESERVED` (loopback, link-local where cloud metadata lives, "this network", multicast, and
  the pod's own node): only by an IP or a CIDR inside those ranges (`0.0.0.0/0` is not), or by
  a rule naming the exact host;
- `PRIVATE` (the private and shared ranges a cluster's pods and Services use): also by a
  wildcard under the cluster's Service domain (`*.svc.cluster.local`, `*.ns.svc.cluster.local`).

Pure, with no I/O: fetch.py resolves names and connects to the checked address; the shared
contract (vortex_kube.contract) checks `spec.egress` with `parse` at deploy time; the operator
turns the rules into NetworkPolicy peers with `Rule.in_cluster_namespace`; `Outcome` names
what became of each request, for the runtime's records and the API's metric.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What became of one fetch request: an HTTP answer (whatever its status), not allowed by the
# egress, past maxRequests or the body limit, out of time, or a failed connection. fetch.py
# counts them; the API's metric and record model name them.
Outcome = Literal["ok", "denied", "limit", "timeout", "error"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

MAX_RULES = 64
MAX_RULE_CHARS = 300
DEFAULT_MAX_REQUESTS, MAX_REQUESTS = 50, 1000
# The Service domain of the cluster: wildcards under it reach PRIVATE addresses.
SERVICE_DOMAIN = "svc.cluster.local"


def _networks(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


RESERVED = _networks(
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fe80::/10",
    "ff00::/8",
)
PRIVATE = _networks("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*\.?$")


class RuleError(ValueError):
    """A rule or an egress object that is not one; the message says why."""


@dataclass(frozen=True)
class Rule:
    text: str
    port: int | None
    host: str | None = None  # a name: exact, or a suffix when `wildcard`
    wildcard: bool = False
    network: IPNetwork | None = None

    def matches(self, host: str, port: int) -> bool:
        """Whether this rule lets a request go to `host` (a name or an address) on `port`."""
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host.endswith("." + self.host) if self.wildcard else host == self.host
        address = ip_address(host)
        return address is not None and self.network is not None and address in self.network

    def names(self, host: str, port: int, address: IPAddress, private: bool) -> bool:
        """Whether this rule lets `host` connect to `address` on `port`, an address denied by
        default (`private`: in PRIVATE, else in RESERVED). An IP or CIDR rule names it when it
        holds the address and lies inside a denied range (so `0.0.0.0/0` is the internet, and
        never the metadata address); a host rule when it is the exact name, or a wildcard
        under the Service domain for a private address."""
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address in self.network and any(
                self.network.version == denied.version and self.network.subnet_of(denied)  # type: ignore[arg-type]
                for denied in RESERVED + PRIVATE
            )
        if not self.matches(host, port):
            return False
        assert self.host is not None
        return not self.wildcard or (private and (self.host + ".").endswith(SERVICE_DOMAIN + "."))

    def in_cluster_namespace(self) -> str | None:
        """For a rule naming Services: `""` for every namespace (`*.svc.cluster.local`), the
        namespace (`x.ns.svc.cluster.local`, `*.ns.svc...`, `x.ns.svc`), else None."""
        if self.host is None:
            return None
        name = self.host.removesuffix(".cluster.local")
        if self.wildcard and name == "svc":
            return ""
        parts = name.split(".")
        if parts[-1] != "svc":
            return None
        if self.wildcard and len(parts) == 2:
            return parts[0]
        return parts[1] if len(parts) == 3 else None


def ip_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise RuleError(f"egress rule {text!r}: an IPv6 address needs its closing ]")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise RuleError(f"egress rule {text!r}: only :port may follow ]")
        return text[1:end], _port(text, rest[1:]) if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _port(text, port)
    return text, None


def _port(text: str, port: str) -> int:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise RuleError(f"egress rule {text!r}: the port must be 1 to 65535")
    return int(port)


def parse_rule(text: object) -> Rule:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_RULE_CHARS:
        raise RuleError(f"an egress rule must be a string of 1 to {MAX_RULE_CHARS} characters")
    raw = text.strip().lower()
    host, port = _split_port(raw)
    if "/" in host:
        try:
            return Rule(text, port, network=ipaddress.ip_network(host, strict=False))
        except ValueError:
            raise RuleError(f"egress rule {text!r}: not a CIDR") from None
    address = ip_address(host)
    if address is not None:
        return Rule(text, port, network=ipaddress.ip_network(address))
    if len(host) > 253 or not _HOST.match(host):
        raise RuleError(
            f"egress rule {text!r}: not a host name, *.domain, IP address or CIDR"
            " (each with an optional :port)"
        )
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    return Rule(text, port, host=name.rstrip("."), wildcard=wildcard)


def _canonical(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Egress:
    """A function's egress: its rules and how many requests one invocation may make."""

    rules: tuple[Rule, ...] = ()
    max_requests: int = DEFAULT_MAX_REQUESTS

    def host_allowed(self, host: str, port: int) -> bool:
        return any(rule.matches(host, port) for rule in self.rules)

    def address_allowed(
        self, host: str, port: int, address: IPAddress, node: tuple[IPNetwork, ...] = ()
    ) -> bool:
        """Whether `host` may connect to `address`, one it resolved to. `node`: the addresses
        of the pod's own node, denied as RESERVED ones are."""
        address = _canonical(address)
        private = False
        if any(address in network for network in RESERVED + node):
            pass
        elif any(address in network for network in PRIVATE):
            private = True
        else:
            return True
        return any(rule.names(host, port, address, private) for rule in self.rules)


def parse(spec: object) -> Egress:
    """`spec.egress` (`{"allow": [...], "maxRequests": N}`); None: no egress at all."""
    if spec is None:
        return Egress()
    if not isinstance(spec, dict):
        raise RuleError("egress must be an object: {allow: [rules], maxRequests: N}")
    unknown = set(spec) - {"allow", "maxRequests"}
    if unknown:
        raise RuleError(f"egress has unknown fields: {', '.join(sorted(unknown))}")
    allow = spec.get("allow")
    if allow is None:
        allow = []
    if not isinstance(allow, list) or len(allow) > MAX_RULES:
        raise RuleError(f"egress.allow must be a list of at most {MAX_RULES} rules")
    limit = spec.get("maxRequests")
    if limit is None:
        limit = DEFAULT_MAX_REQUESTS
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_REQUESTS:
        raise RuleError(f"egress.maxRequests must be an integer from 1 to {MAX_REQUESTS}")
    return Egress(tuple(parse_rule(r) for r in allow), limit)


def to_json(spec: dict[str, Any]) -> str:
    """The one-line JSON form a runtime reads back with `from_json` (header and env)."""
    return json.dumps(spec, separators=(",", ":"), sort_keys=True)


@lru_cache(maxsize=256)
def from_json(text: str) -> Egress:
    """`parse` of the JSON text of `spec.egress`, cached: the same header comes with every call."""
    try:
        spec = json.loads(text)
    except ValueError:
        raise RuleError("egress must be a JSON object") from None
    return parse(spec)
