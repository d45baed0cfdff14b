"""README.md names every setting the code reads and every metric the code exports.

Settings are the fields of the pydantic-settings classes of the runtime, the API and the operator,
each named by its environment variable (`env_prefix` + the field name upper-cased, or the field's
alias). Metrics are every family registered by the three `metrics` modules, by their exposed name
(counters with `_total`).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

import vortex_api.metrics
import vortex_operator.metrics
import vortex_runtime.metrics
from vortex_api.settings import Settings as ApiSettings
from vortex_operator.settings import Settings as OperatorSettings
from vortex_runtime.settings import MinioSettings, RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    RuntimeSettings,
    MinioSettings,
    ApiSettings,
    OperatorSettings,
)
METRICS_MODULES: tuple[ModuleType, ...] = (
    vortex_runtime.metrics,
    vortex_api.metrics,
    vortex_operator.metrics,
)


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _mentioned(name: str, text: str) -> bool:
    """Whether `name` occurs in `text` as a whole word (MINIO_SECRET_KEY is not found inside
    VORTEX_OPERATOR_RUNTIME_MINIO_SECRET_KEY)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def _is_settings_class(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseSettings)


def _alias_names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def env_names(cls: type[BaseSettings]) -> list[str]:
    """The environment variables `cls` reads, one per field (nested settings classes are read
    from their own variables, so they are not variables themselves)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: list[str] = []
    for field_name, field in cls.model_fields.items():
        if _is_settings_class(field.annotation):
            continue
        aliases = _alias_names(field)
        if aliases:
            names.extend(alias.upper() for alias in aliases)
        else:
            names.append(f"{prefix}{field_name}".upper())
    return names


def _registries(module: ModuleType) -> list[CollectorRegistry]:
    """The registries of a metrics module: module-level ones, and those of the module's own
    classes that build one per instance (the API's `Metrics`)."""
    found: list[CollectorRegistry] = []
    for value in vars(module).values():
        if isinstance(value, CollectorRegistry):
            found.append(value)
        elif inspect.isclass(value) and value.__module__ == module.__name__:
            params = inspect.signature(value).parameters.values()
            if any(
                p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                for p in params
            ):
                continue
            instance = value()
            found.extend(v for v in vars(instance).values() if isinstance(v, CollectorRegistry))
    return found


def _exposed(name: str, kind: str | None) -> str:
    return f"{name}_total" if kind == "counter" and not name.endswith("_total") else name


def metric_names(module: ModuleType) -> list[str]:
    """The exposed name of every metric family `module` registers."""
    names: set[str] = set()
    for registry in _registries(module):
        for family in registry.collect():
            names.add(_exposed(family.name, family.type))
    # Metrics kept as module attributes but registered elsewhere (or nowhere) count too.
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            names.add(_exposed(value._name, value._type))
    return sorted(names)


def test_settings_classes_read_variables() -> None:
    for cls in SETTINGS_CLASSES:
        assert env_names(cls), f"{cls.__module__}.{cls.__qualname__} has no settings"


def test_readme_names_every_setting() -> None:
    text = _readme()
    missing = {
        f"{cls.__module__}.{cls.__qualname__}": [
            n for n in env_names(cls) if not _mentioned(n, text)
        ]
        for cls in SETTINGS_CLASSES
    }
    missing = {where: names for where, names in missing.items() if names}
    assert not missing, "README.md does not name these environment variables:\n" + "\n".join(
        f"  {where}: {', '.join(names)}" for where, names in missing.items()
    )


def test_metrics_modules_register_metrics() -> None:
    for module in METRICS_MODULES:
        names = metric_names(module)
        assert names, f"no metrics found in {module.__name__}"
        assert all(n.startswith("vortex_") for n in names), names


def test_readme_names_every_metric() -> None:
    text = _readme()
    missing = {
        module.__name__: [n for n in metric_names(module) if not _mentioned(n, text)]
        for module in METRICS_MODULES
    }
    missing = {where: names for where, names in missing.items() if names}
    assert not missing, "README.md does not name these metrics:\n" + "\n".join(
        f"  {where}: {', '.join(names)}" for where, names in missing.items()
    )
