"""Jinja2 row templates: how a Hub dataset's row becomes a task (prompt, expected, id, system, meta).

`prompt`, `id` and `system` render to text; `expected` and each `meta` entry render to a native value, so
`{{ choices }}` stays a list and `{{ answer }}` stays a number. Names a template can use: every column of the
row, `row` (the whole row), `row_index` (its position in the split), `meta` (the rendered `meta` entries, for
`prompt` and `expected`), `letters` ("ABCD..."); filters `shuffle_with(seed)` (a fixed order per seed) and
`drop_tags` (removes "[title]"-style markers). A name that is not in the row is an error that names the column.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.nativetypes import NativeEnvironment

LETTERS = string.ascii_uppercase


def shuffle_with(items: Any, seed: Any) -> list[Any]:
    """The items in an order fixed by `seed` (the same on every run and machine: str seeds hash stably)."""
    out = list(items)
    random.Random(str(seed)).shuffle(out)
    return out


def drop_tags(text: Any) -> str:
    """Drop scraping markers such as "[title]" or "[header]" ("[title]" becomes a sentence break)."""
    text = str(text).strip().replace(" [title]", ". ")
    text = re.sub(r"\[[^\]]*\]", "", text)
    return re.sub(r" {2,}", " ", text).strip()


def _setup(env: jinja2.Environment) -> jinja2.Environment:
    env.globals["letters"] = LETTERS
    env.filters["shuffle_with"] = shuffle_with
    env.filters["drop_tags"] = drop_tags
    return env


_TEXT = _setup(jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False))
_NATIVE = _setup(NativeEnvironment(undefined=jinja2.StrictUndefined, autoescape=False))


class TemplateError(ValueError):
    """A template that does not compile or render; the message names the field (and the column)."""


_MISSING = re.compile(r"^'([^']+)' is undefined$")


@dataclass(frozen=True)
class RowTemplates:
    """The compiled templates of one dataset; `render(index, row)` returns the task's parts."""
    prompt: jinja2.Template
    expected: jinja2.Template | None
    id: jinja2.Template | None
    system: jinja2.Template | None
    meta: dict[str, jinja2.Template]

    @classmethod
    def compile(cls, prompt: str, expected: str | None, id: str | None, system: str | None,
                meta: dict[str, str]) -> "RowTemplates":
        def one(env: jinja2.Environment, field: str, text: str | None) -> jinja2.Template | None:
            if text is None:
                return None
            try:
                return env.from_string(text)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"field '{field}': template line {exc.lineno}: {exc.message}") from None

        return cls(prompt=one(_TEXT, "prompt", prompt), expected=one(_NATIVE, "expected", expected),  # type: ignore[arg-type]
                   id=one(_TEXT, "id", id), system=one(_TEXT, "system", system),
                   meta={k: one(_NATIVE, f"meta.{k}", v) for k, v in meta.items()})  # type: ignore[misc]

    def render(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        ctx: dict[str, Any] = {**row, "row": row, "row_index": index}
        meta = {k: _render(t, f"meta.{k}", ctx, row) for k, t in self.meta.items()}
        ctx["meta"] = meta
        out = {"prompt": _render(self.prompt, "prompt", ctx, row), "meta": meta}
        out["expected"] = _render(self.expected, "expected", ctx, row) if self.expected else None
        out["id"] = _render(self.id, "id", ctx, row).strip() if self.id else str(index)
        out["system"] = _render(self.system, "system", ctx, row) if self.system else None
        return out


def _render(template: jinja2.Template, field: str, ctx: dict[str, Any], row: dict[str, Any]) -> Any:
    try:
        value = template.render(ctx)
        if isinstance(value, jinja2.Undefined):  # a native render hands a lone undefined name back unraised
            str(value)
        return value
    except jinja2.UndefinedError as exc:
        m = _MISSING.match(str(exc.message))
        what = f"column {m.group(1)!r} is missing" if m else str(exc.message)
        raise TemplateError(f"field '{field}': {what} (the row's columns: {sorted(row)})") from None
    except Exception as exc:  # a template computing on a value of the wrong type, an index out of range...
        raise TemplateError(f"field '{field}': template failed: {type(exc).__name__}: {exc}") from None
