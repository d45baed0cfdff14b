"""What the API says once it listens: local mode's banner, or one ready line in a cluster.

The banner gives the URL to call, the number of workers, the data dir, whether auth is on, and the
first commands to try (curl, and the vortex CLI where it is installed beside this Python), written
so that they run as shown. In text format it is a block of its own among the log lines; in json
one line with the same facts as fields. `__main__` calls `announce` once uvicorn listens.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vortex_api.settings import Settings

log = logging.getLogger("vortex_api")

# The function the commands deploy and run (body form; see the README's "Writing functions").
_NAME = "hello"
_CODE = 'return "Hello Vortex!";'
_DEPLOY_BODY = json.dumps({"name": _NAME, "code": _CODE})
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def url_of(host: str, port: int) -> str:
    """The URL a client on this machine calls for an API bound to `host`:`port`."""
    host = _WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _default_url() -> str:
    """Where the CLI calls without `--url`: the API's default address."""
    fields = Settings.model_fields
    return url_of(fields["host"].default, fields["port"].default)


def cli_path() -> str | None:
    """The `vortex` command beside this Python (relative to the working directory when it is
    below it, as `.venv/bin/vortex` under `make run`), or None where the CLI is not installed."""
    path = Path(sys.executable).parent / "vortex"
    if not path.is_file():
        return None
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


@dataclass(frozen=True)
class Banner:
    """The facts of local mode's banner."""

    url: str
    workers: int
    data_dir: str
    admin_key: bool
    invoke_keys: bool
    commands: tuple[str, ...]

    @property
    def auth(self) -> str:
        if not (self.admin_key or self.invoke_keys):
            return "off (no VORTEX_ADMIN_KEY or VORTEX_INVOKE_KEYS): deploy and execute are open"
        parts = []
        if self.admin_key:
            parts.append("VORTEX_ADMIN_KEY for deploy, list and delete")
        if self.invoke_keys:
            parts.append("VORTEX_INVOKE_KEYS for execute")
        elif self.admin_key:
            parts.append("execute open")
        return "on: " + "; ".join(parts)

    def text(self) -> str:
        """The banner as a person reads it, framed by blank lines."""
        first, *rest = self.commands
        lines = [
            "",
            f"Vortex local mode is ready on {self.url}",
            f"  workers   {self.workers} runtime process{'es' if self.workers != 1 else ''},"
            " reached through the API",
            f"  data dir  {self.data_dir}",
            f"  auth      {self.auth}",
            f"  try       {first}",
            *(f"            {command}" for command in rest),
            "Ctrl-C stops the API and its workers.",
            "",
        ]
        return "\n".join(lines)

    def fields(self) -> dict[str, object]:
        """The banner's facts as fields of a JSON line."""
        return {
            "url": self.url,
            "workers": self.workers,
            "data_dir": self.data_dir,
            "admin_key": self.admin_key,
            "invoke_keys": self.invoke_keys,
            "commands": list(self.commands),
        }


def _keys(settings: Settings) -> tuple[str | None, str | None]:
    """The key deploy and execute need, as the commands write it (None: that part is open)."""
    if settings.admin_key is not None:
        # Accepted for execute too; shown by name, never by value.
        return "$VORTEX_ADMIN_KEY", "$VORTEX_ADMIN_KEY"
    return None, ("<invoke key>" if settings.invoke_key_list else None)


def _commands(settings: Settings, url: str, cli: str | None) -> tuple[str, ...]:
    deploy_key, execute_key = _keys(settings)
    deploy_auth = f' -H "Authorization: Bearer {deploy_key}"' if deploy_key else ""
    execute_auth = f' -H "Authorization: Bearer {execute_key}"' if execute_key else ""
    commands = [
        f"curl -s -X POST {url}/deploy{deploy_auth} -H 'content-type: application/json'"
        f" -d {shlex.quote(_DEPLOY_BODY)}",
        f"curl -s -X POST {url}/execute/{_NAME}{execute_auth}",
    ]
    if cli is not None:
        where = "" if url == _default_url() else f" --url {url}"
        deploy_opts = where + (f' --key "{deploy_key}"' if deploy_key else "")
        invoke_opts = where + (f' --key "{execute_key}"' if execute_key else "")
        commands.append(
            f"{cli} init {_NAME} && {cli} deploy {_NAME}/function.js --name {_NAME}{deploy_opts}"
            f' && {cli} invoke {_NAME} --data \'{{"name": "Ada"}}\'{invoke_opts}'
        )
    return tuple(commands)


def local_banner(settings: Settings, port: int, cli: str | None) -> Banner:
    """The banner of local mode serving on `port` with these settings."""
    url = url_of(settings.host, port)
    return Banner(
        url=url,
        workers=settings.local_workers,
        data_dir=str(settings.data_dir.resolve()),
        admin_key=settings.admin_key is not None,
        invoke_keys=bool(settings.invoke_key_list),
        commands=_commands(settings, url, cli),
    )


def announce(settings: Settings, port: int) -> None:
    """Log, once, that the API serves on `port`: local mode's banner, or a ready line."""
    if settings.backend != "local":
        log.info(
            "vortex api ready, listening on %s:%d (%s backend, namespace %s)",
            settings.host,
            port,
            settings.backend,
            settings.namespace,
        )
        return
    banner = local_banner(settings, port, cli_path())
    log.info(
        "vortex local mode ready on %s",
        banner.url,
        extra={"banner": banner.text(), **banner.fields()},
    )
