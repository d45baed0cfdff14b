"""How the integration tests run the real `vortex` program against a real local-mode API.

`vortex` runs `python -m vortex_cli` as a subprocess with `VORTEX_URL` set to the API under test
and nothing else of the caller's `VORTEX_*`. `console_script_dir` makes a directory holding a
`vortex` executable: the console script `make install` put beside this Python if there is one,
else the same entry point read from api/pyproject.toml's `[project.scripts]`, which is what pip's
generated script runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_S = 60


def cli_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VORTEX_")}
    return {**env, "VORTEX_URL": url, **extra}


def vortex(
    url: str,
    *args: str,
    input: str | None = None,
    cwd: Path | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`vortex <args>` against the API at `url`; stdin is `input`, else not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "vortex_cli", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(url, **env),
        cwd=cwd,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def entry_point() -> str:
    """The `vortex` entry of api/pyproject.toml, as `module:function`."""
    project = tomllib.loads((ROOT / "api" / "pyproject.toml").read_text())["project"]
    return str(project["scripts"]["vortex"])


def console_script_dir(tmp: Path) -> Path:
    """A directory to put first on PATH, whose `vortex` is the console script."""
    installed = Path(sys.executable).parent / "vortex"
    if installed.exists():
        return installed.parent
    module, function = entry_point().split(":")
    script = tmp / "vortex"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
    )
    script.chmod(0o755)
    return tmp
