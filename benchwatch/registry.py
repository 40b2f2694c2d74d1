"""The one idiom for extension points: a named registry that backends, evaluators and dataset sources use alike.

An implementation registers itself where it is written (`@EVALUATORS.register("numeric")`), and the registry
imports its built-in modules the first time it is asked for a name, so it always knows them all. An entry may
instead name where it lives ("package.module:attr"), imported only when it is used: the backends do, so that
knowing their names (to validate a config) imports no HTTP client or model library. Config validation is derived
from the registries: the allowed names and, where an entry declares them, its options (a pydantic model) come
from here, never from a list copied into the config schema.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T")


def _resolve(ref: Any) -> Any:
    """An object as is; "package.module:attr" imported."""
    if isinstance(ref, str) and ":" in ref:
        module, attr = ref.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    return ref


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    target: T | str  # the implementation, or where it lives
    options: type[BaseModel] | str | None  # None: the entry checks its own options (or passes them through)


class Registry(Generic[T]):
    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self._builtins = builtins  # modules that register built-in entries when imported
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, name: str, options: type[BaseModel] | None = None) -> Callable[[T], T]:
        """Decorator: register `target` under `name` (a class gets `name` as its `.name`)."""
        def wrap(target: T) -> T:
            self.add(name, target, options)
            if isinstance(target, type):
                target.name = name  # type: ignore[attr-defined]
            return target
        return wrap

    def add(self, name: str, target: T | str, options: type[BaseModel] | str | None = None) -> None:
        """Register `target` (or "package.module:attr", imported on first use) under `name`."""
        self._entries[name] = Entry(name, target, options)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def get(self, name: str) -> T:
        """The implementation registered as `name` (imported now if it was registered by where it lives)."""
        return _resolve(self.entry(name).target)

    def items(self) -> list[Entry[T]]:
        self._load()
        return list(self._entries.values())

    def check_name(self, name: str) -> str:
        """For config validators: the name, or ValueError naming the allowed ones."""
        try:
            self.entry(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return name

    def check_options(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """For config validators: validate `options` against the entry's declared options model, if any;
        ValueError naming the option that is wrong and, for an unknown one, the options there are."""
        model = _resolve(self.entry(name).options)
        if model is None:
            return options
        try:
            model.model_validate(options)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                raise ValueError(f"{self.kind} {name!r}: unknown option {where!r}; its options: "
                                 f"{', '.join(model.model_fields)}") from None
            raise ValueError(f"{self.kind} {name!r}: option {where!r}: {err['msg']}") from None
        return options
