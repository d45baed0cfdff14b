"""API keys as Bearer tokens: an admin key for deploy, list and delete; invoke keys for execute.

Routes call `Auth.require_admin` / `Auth.require_invoke` with the request's Authorization header.
Without an admin key configured, admin actions are open (local mode's default); without invoke
keys, execute is open. The admin key also grants execute. A missing or unknown key is 401; a known
key that does not grant the action is 403. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

from vortex_api.errors import Forbidden, Unauthorized

_PREFIX = "bearer "


def _token(authorization: str | None) -> bytes:
    if not authorization or authorization[:7].lower() != _PREFIX or not authorization[7:].strip():
        raise Unauthorized("a Bearer API key is required")
    return authorization[7:].strip().encode()


def _matches(token: bytes, keys: list[bytes]) -> bool:
    found = False
    for key in keys:
        found |= hmac.compare_digest(token, key)
    return found


class Auth:
    """The configured keys and the checks routes make against them."""

    def __init__(self, admin_key: str | None, invoke_keys: list[str]) -> None:
        self._admin = [admin_key.encode()] if admin_key else []
        self._invoke = [k.encode() for k in invoke_keys]
        self.admin_enabled = bool(self._admin)
        self.invoke_enabled = bool(self._invoke)

    def require_admin(self, authorization: str | None) -> None:
        if not self.admin_enabled:
            return
        token = _token(authorization)
        if _matches(token, self._admin):
            return
        if _matches(token, self._invoke):
            raise Forbidden("this key may execute functions but not manage them")
        raise Unauthorized("unknown API key")

    def require_invoke(self, authorization: str | None) -> None:
        if not self.invoke_enabled:
            return
        token = _token(authorization)
        if not _matches(token, self._invoke) and not _matches(token, self._admin):
            raise Unauthorized("unknown API key")
