"""Adapters for the ecosystem's task packages: reasoning-gym datasets and TextArena single-player games.

Each adapter is one ``drift/*`` env over an optional package (extras ``[reasoning-gym]`` and
``[textarena]``); importing this package imports neither. :mod:`drift_envs.ecosystem.catalog` lists
every dataset and game and whether it runs offline on this machine
(``python -m drift_envs.ecosystem.catalog``).
"""

from __future__ import annotations

__all__ = ["MissingPackageError", "require_package"]


class MissingPackageError(ImportError):
    """An optional package an adapter needs is not installed (the message names the extra)."""


def require_package(module: str, extra: str, pin: str) -> object:
    """Import ``module`` or raise :class:`MissingPackageError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingPackageError(
            f"this env needs the optional package {pin!r} ({err}); install it with "
            f"`pip install 'drift-toolkit[{extra}]'` or `pip install {pin}`"
        ) from err
