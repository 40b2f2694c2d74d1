"""Docs that can't drift: every config field and CLI flag is documented, the site builds strictly, the generated
references come from the code, the README stays short and its screenshots small."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import BaseModel

from benchwatch import events as ev
from benchwatch.cli import build_parser
from benchwatch.config import Config
from benchwatch.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


# ---- config fields -------------------------------------------------------------------------------------------

def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside a field's type (and whether it is a list of them)."""
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ()) or ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if origin is list and args:
        inner, _ = _model_of(args[0])
        return inner, True
    for a in args:  # Optional[Model], Model | None
        inner, is_list = _model_of(a)
        if inner is not None:
            return inner, is_list
    return None, False


def config_fields(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[str]:
    """Every field path of the config schema: store, server.url, models[].gguf, ..."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path
        inner, is_list = _model_of(field.annotation)
        if inner is not None:
            yield from config_fields(inner, f"{path}[]." if is_list else f"{path}.")


def missing_in_example(paths: list[str], text: str) -> list[str]:
    """Paths whose key is not written (set or commented out) in its section of a YAML example file."""
    sections: dict[str, set[str]] = {}
    top_keys: set[str] = set()
    section = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_]\w*):", line)
        if m:  # an uncommented top-level key opens a section
            section = m.group(1)
            top_keys.add(section)
            sections.setdefault(section, set())
            continue
        bare = re.sub(r"^(\s*)#\s?", r"\1", line)  # a commented-out field counts: it documents the key
        m = re.match(r"^\s+(?:-\s+)?([A-Za-z_]\w*):", bare)
        if m and section:
            sections[section].add(m.group(1))
    missing = []
    for path in paths:
        parts = path.replace("[]", "").split(".")
        if len(parts) == 1:
            ok = parts[0] in top_keys
        else:
            ok = parts[-1] in sections.get(parts[0], set())
        if not ok:
            missing.append(path)
    return missing


def missing_in_page(paths: list[str], text: str) -> list[str]:
    return [p for p in paths if f"`{p}`" not in text]


def test_config_walk_finds_nested_fields():
    paths = list(config_fields())
    for expected in ("store", "server.bus", "runner.cooling_s", "models[].gguf", "datasets[].limit"):
        assert expected in paths
    assert len(paths) == len(set(paths))


def test_every_config_field_is_in_config_example():
    missing = missing_in_example(list(config_fields()), (ROOT / "config.example.yaml").read_text())
    assert not missing, f"config.example.yaml does not show these config fields: {missing}"


def test_every_config_field_is_in_the_configuration_page():
    missing = missing_in_page(list(config_fields()), (DOCS / "configuration.md").read_text())
    assert not missing, f"docs/configuration.md does not document these config fields (as `path`): {missing}"


def test_the_config_checks_catch_a_missing_field():
    example = "store: x\nserver:\n  url: u\n  # bus: redis://\nmodels:\n  - name: m\n    # gguf: p\n"
    assert missing_in_example(["store", "server.url", "server.bus", "models[].gguf"], example) == []
    assert missing_in_example(["server.port", "models[].n_ctx", "runner"], example) == \
        ["server.port", "models[].n_ctx", "runner"]
    # a key under the wrong section does not count for another one
    assert missing_in_example(["models[].url"], example) == ["models[].url"]
    assert missing_in_page(["server.url", "server.bus"], "| `server.url` | ... | server.bus |") == ["server.bus"]


# ---- CLI flags -----------------------------------------------------------------------------------------------

def cli_flags(parser: argparse.ArgumentParser | None = None) -> dict[str, list[str]]:
    """command -> its option strings, from the real parser (the main one is '')."""
    parser = parser or build_parser()
    out: dict[str, list[str]] = {"": []}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = [o for a in sub._actions for o in a.option_strings if o not in ("-h", "--help")]
        else:
            out[""] += [o for o in action.option_strings if o not in ("-h", "--help")]
    return out


def hand_written_docs() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.rglob("*.md"))) + (ROOT / "README.md").read_text()


def missing_flags(flags: dict[str, list[str]], text: str) -> list[str]:
    missing = []
    for command, options in flags.items():
        if command and f"benchwatch {command}" not in text:
            missing.append(f"benchwatch {command}")
        for opt in options:
            if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text):
                missing.append(f"{command or 'benchwatch'} {opt}")
    return missing


def test_every_cli_flag_is_in_the_docs():
    flags = cli_flags()
    assert "--resume" in flags["run"] and "--exit-when-done" in flags["demo"]
    missing = missing_flags(flags, hand_written_docs())
    assert not missing, f"these commands / flags of `benchwatch --help` are not in docs/ or README.md: {missing}"


def test_the_flag_check_catches_a_missing_flag():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    s = sub.add_parser("frob")
    s.add_argument("--level")
    s.add_argument("-q", "--quiet")
    flags = cli_flags(p)
    assert missing_flags(flags, "benchwatch frob --level N") == ["frob -q", "frob --quiet"]
    # --level-up is another flag, not --level
    assert missing_flags(flags, "benchwatch frob --level-up -q --quiet") == ["frob --level"]


# ---- generated references and the site -----------------------------------------------------------------------

def event_models(schema: dict) -> dict[str, str]:
    """type tag -> model name, read from the schema's union (its discriminator, else each member's `type`)."""
    out = {}
    for option in schema.get("oneOf") or schema.get("anyOf") or []:
        name = option["$ref"].rsplit("/", 1)[-1]
        tag = schema["$defs"][name]["properties"]["type"]
        out[tag.get("const", tag.get("default"))] = name
    return out


def test_events_schema_covers_the_contract():
    schema = json_schema("events")
    assert sorted(event_models(schema)) == sorted(ev.EVENT_TYPES)
    assert schema["$defs"]["TokenDelta"]["properties"]["kind"]["enum"] == ["thinking", "visible"]


def test_unknown_schema_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown schema .nope.[:;] expected one of .*events"):
        json_schema("nope")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    return out


def test_mkdocs_build_strict_passes(site: Path):
    for page in ("index.html", "configuration/index.html", "reference/events/index.html"):
        assert (site / page).is_file(), page


def test_event_reference_is_generated_from_the_code(site: Path):
    html = (site / "reference/events/index.html").read_text()
    for name, model in event_models(json_schema("events")).items():
        assert name in html and model in html
        for field in getattr(ev, model).model_fields:
            assert f"<code>{field}</code>" in html, (model, field)
    assert not (DOCS / "reference").exists(), "generated pages are built, never committed"


def test_live_state_reference_only_where_its_schema_exists(site: Path):
    try:
        schema = json_schema("state")
    except ValueError:
        assert not (site / "reference/live-state").exists()
        return
    html = (site / "reference/live-state/index.html").read_text()
    for field in schema.get("properties", {}):
        assert f"<code>{field}</code>" in html, field


# ---- README and screenshots ----------------------------------------------------------------------------------

def test_readme_is_short_and_links_into_the_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 160
    for cmd in ("scripts/demo.sh", "scripts/test.sh", "benchwatch run", "benchwatch serve", "benchwatch results",
                "benchwatch report", "benchwatch export"):
        assert cmd in text, cmd
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links, "the README links into docs/"
    for link in links:
        assert (ROOT / link).exists(), link


def test_screenshots_in_the_docs_exist_and_stay_small():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", hand_written_docs())
    assert images
    files = {p for p in (DOCS / "img").glob("*.png")}
    for src in images:
        path = (DOCS / src) if not src.startswith("docs/") else ROOT / src
        assert path.resolve() in {f.resolve() for f in files}, f"{src}: not in docs/img"
    total = sum(f.stat().st_size for f in files)
    assert total < 600_000, f"docs/img holds {total} bytes of PNG: run scripts/screenshots.sh (it optimises them)"
