"""Coerce plain ``str`` and ``Path`` command-line values without importing pydantic.

typer (0.2x) turns every non-flag value into its Python type through a pydantic ``TypeAdapter`` built on
first use. Importing pydantic for that costs about 50 ms, a third of a command's start-up, and every lorareg
command reads strings, paths and flags. :func:`install` gives typer a coercer for those annotations (and
lists of them) that does what typer's adapter does for them: a ``str`` or ``bool`` that already is one stays
itself, a path becomes ``Path(value)`` and then goes through typer's own path checks (``exists``,
``file_okay``, …), so messages and exit codes are typer's.

Deliberately not handled here: numbers (bounds, pydantic's lax parsing and its messages), enums, tuples,
custom parsers, ``path_type``, and any value that is not already of the annotated type (a ``"yes"`` for a
flag, bytes from argv); those go to typer's own coercer, built (and pydantic imported) only when such a
value actually arrives.

This hooks a private name, ``typer.core.build_runtime_param``. With a typer that lacks it :func:`install`
changes nothing, and the CLI only starts slower (``tests/test_cli_startup.py`` notices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

try:
    from typer import core as _typer_core
    from typer._coercion import RuntimeParam, TypeDescriptor
    from typer._param_types import coerce_cli_path
except ImportError:  # another typer: keep its own coercion
    _HOOKABLE = False
else:
    _HOOKABLE = True

_HOOK_NAME = "build_runtime_param"  # typer.core's name for the function that picks a parameter's coercer

_PLAIN_TYPES = (str, Path, bool)


def install() -> None:
    """Route plain ``str``/``Path``/``bool`` parameters of every typer command through :class:`_PlainParam`.

    Idempotent: a second call (the module re-imported in tests) keeps the first hook.
    """
    if not _HOOKABLE:
        return
    typer_build: Callable[[TypeDescriptor], RuntimeParam] | None = getattr(_typer_core, _HOOK_NAME, None)
    if typer_build is None or getattr(typer_build, "_lorareg_plain", False):
        return

    def build(descriptor: TypeDescriptor) -> RuntimeParam:
        if not _is_plain(descriptor):
            return typer_build(descriptor)
        return _PlainParam(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            typer_param=lambda: typer_build(descriptor),
        )

    build._lorareg_plain = True  # type: ignore[attr-defined]
    setattr(_typer_core, _HOOK_NAME, build)


def _is_plain(descriptor: TypeDescriptor) -> bool:
    """A bare ``str``, ``Path`` or ``bool`` (or a list of one) with no parser or path type of its own."""
    info = descriptor.parameter_info
    annotation: Any = descriptor.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    return (
        annotation in _PLAIN_TYPES
        and descriptor.file_annotation is None
        and info.parser is None
        and info.path_type is None
    )


if _HOOKABLE:

    @dataclass(frozen=True)
    class _PlainParam(RuntimeParam):
        """Coerce ``str``, ``Path`` and ``bool`` values by hand; hand any other value to typer's coercer."""

        typer_param: Callable[[], RuntimeParam] = field(compare=False)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation: Any = self.annotation
            if get_origin(annotation) is list:
                (leaf,) = get_args(annotation)
                if isinstance(value, list | tuple) and all(_is_plain_value(leaf, v) for v in value):
                    return [self._coerce_leaf(leaf, v, param, ctx) for v in value]
            elif _is_plain_value(annotation, value):
                return self._coerce_leaf(annotation, value, param, ctx)
            return self.typer_param()._coerce_value(value, param, ctx)

        def _coerce_leaf(self, leaf: type, value: Any, param: Any, ctx: Any) -> Any:
            if leaf is Path:
                return coerce_cli_path(Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx)
            return value


def _is_plain_value(leaf: Any, value: Any) -> bool:
    """Whether ``value`` is one this module coerces exactly as typer would: already the leaf's own type."""
    if leaf is Path:
        return isinstance(value, str | Path)
    return type(value) is leaf
