"""MkDocs hooks: the reference pages generated from the code at build time (never written by hand or committed).

- reference/events.md from `benchwatch.schema.json_schema("events")` (the pydantic event contract);
- reference/live-state.md from `json_schema("state")`, only where that schema exists.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchwatch.schema import json_schema  # noqa: E402

# name -> (page, title, what it is)
PAGES = {
    "events": ("reference/events.md", "Event reference",
               "Every event that crosses a boundary (runner → sinks → server → page), as declared in "
               "`benchwatch/events.py`. Ingest (`POST /api/benchmark/telemetry/events`) validates against exactly "
               "these models and refuses anything else, naming the event and the field."),
    "state": ("reference/live-state.md", "Live-state reference",
              "The run state that the reducer folds events into: the SSE `snapshot` and what the `patch` "
              "operations change, as declared in `benchwatch/state.py`."),
}


def available(name: str) -> bool:
    try:
        json_schema(name)
    except (ValueError, KeyError):
        return False
    return True


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(s: dict[str, Any]) -> str:
    """A short human reading of a JSON Schema type."""
    if "$ref" in s:
        name = _ref_name(s["$ref"])
        return f"[{name}](#{name.lower()})"
    if "const" in s:
        return f"`{json.dumps(s['const'])}`"
    if "enum" in s:
        return " | ".join(f"`{json.dumps(v)}`" for v in s["enum"])
    if "anyOf" in s or "oneOf" in s:
        return " | ".join(type_of(o) for o in s.get("anyOf") or s["oneOf"])
    t = s.get("type")
    if t == "array":
        items = s.get("items")
        return f"list of {type_of(items)}" if items else "list"
    if t == "object":
        extra = s.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"object of {type_of(extra)}"
        return "object"
    if isinstance(t, list):
        return " | ".join(t)
    return t or "any"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _bounds(s: dict[str, Any]) -> str:
    marks = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<",
             "minLength": "length ≥", "maxLength": "length ≤", "minItems": "items ≥"}
    return ", ".join(f"{sign} {s[k]}" for k, sign in marks.items() if k in s)


def model_section(name: str, s: dict[str, Any], heading: str, tag: str | None = None) -> list[str]:
    out = [f"{heading} {name}", ""]
    if s.get("description"):
        out += [s["description"].strip(), ""]
    props = s.get("properties") or {}
    if not props:
        return out + [f"Type: {type_of(s)}", ""]
    required = set(s.get("required") or []) | ({tag} if tag else set())  # the union's tag is needed to parse
    out += ["| field | type | required | default | notes |", "|---|---|---|---|---|"]
    for field, fs in props.items():
        default = "" if "default" not in fs else f"`{json.dumps(fs['default'])}`"
        notes = "; ".join(x for x in (fs.get("description", ""), _bounds(fs)) if x)
        out.append(f"| `{field}` | {_cell(type_of(fs))} | {'yes' if field in required else 'no'} | "
                   f"{_cell(default)} | {_cell(notes)} |")
    return out + [""]


def render(name: str) -> str:
    page, title, intro = PAGES[name]
    schema = json_schema(name)
    defs: dict[str, Any] = schema.get("$defs", {})
    lines = [f"# {title}", "", "!!! info \"Generated\"",
             f"    Generated from `benchwatch.schema.json_schema(\"{name}\")` when the docs are built: it is the "
             "code's own declaration, so it cannot drift from it.", "", intro, ""]
    done: set[str] = set()
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        key = (schema.get("discriminator") or {}).get("propertyName", "type")
        mapping = (schema.get("discriminator") or {}).get("mapping") or {}
        by_ref = {_ref_name(v): k for k, v in mapping.items()}
        for o in options:  # without a discriminator, each member's constant tag names it
            ref = _ref_name(o["$ref"])
            tag = defs[ref].get("properties", {}).get(key, {})
            by_ref.setdefault(ref, tag.get("const", tag.get("default", ref)))
        lines += [f"The `{key}` field selects the model: every event must carry it.", "",
                  f"| `{key}` | model |", "|---|---|"]
        for o in options:
            ref = _ref_name(o["$ref"])
            lines.append(f"| [`{by_ref.get(ref, ref)}`](#{ref.lower()}) | {ref} |")
        lines += ["", "## Events" if name == "events" else "## Variants", ""]
        for o in options:
            ref = _ref_name(o["$ref"])
            lines += model_section(ref, defs[ref], "###", tag=key)
            done.add(ref)
    else:
        lines += model_section(schema.get("title", name), schema, "##")
    rest = [k for k in defs if k not in done]
    if rest:
        lines += ["## Nested types", ""]
        for k in rest:
            lines += model_section(k, defs[k], "###")
    lines += ["## JSON Schema", "", "??? note \"The whole schema\"", "", "    ```json"]
    lines += ["    " + ln for ln in json.dumps(schema, indent=2, ensure_ascii=False).splitlines()]
    lines += ["    ```", ""]
    return "\n".join(lines)


def on_config(config: Any) -> Any:
    """Add the live-state reference to the nav only where its schema exists."""
    if available("state"):
        for item in config["nav"]:
            if isinstance(item, dict) and "Reference" in item:
                item["Reference"].append({"Live state (generated)": PAGES["state"][0]})
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File
    for name, (page, _title, _intro) in PAGES.items():
        if available(name):
            files.append(File.generated(config, page, content=render(name)))
    return files
