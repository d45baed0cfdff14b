"""`python -m vortex_cli`: the same as the `vortex` console script."""

from __future__ import annotations

from vortex_cli.main import main

if __name__ == "__main__":
    main()
