"""The hf: source and the presets over local folders in the Hub's layout (written by tests/hf_fixtures.py with
the `datasets` library; nothing is downloaded), and the offline Hub cache in a subprocess."""
from __future__ import annotations

import os
import subprocess
import textwrap
import tracemalloc
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the Hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
datasets = pytest.importorskip("datasets")

from benchwatch.config import ConfigError, DatasetConfig, parse_config  # noqa: E402
from benchwatch.datasets import DatasetError, load_dataset  # noqa: E402
from benchwatch.datasets import hf as hf_source  # noqa: E402
from benchwatch.datasets.presets import PRESETS  # noqa: E402
from tests import hf_fixtures as fx  # noqa: E402
from tests.conftest import PYTHON, cli_env  # noqa: E402

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def suites(tmp_path_factory) -> dict[str, Path]:
    return fx.write_suites(tmp_path_factory.mktemp("hub"))


def _dataset(**fields) -> DatasetConfig:
    cfg = parse_config({"models": [{"name": "m", "backend": "reference"}], "datasets": [{"name": "d", **fields}]})
    return cfg.datasets[0]


def test_every_preset_reads_its_local_copy(suites):
    assert set(PRESETS) == set(fx.ROWS)
    for name, folder in suites.items():
        tasks = load_dataset(_dataset(preset=name, source=f"hf:{folder}"), Path("."))
        assert len(tasks) == len(fx.ROWS[name]), name
        for task, row in zip(tasks, fx.ROWS[name]):
            assert task.prompt.strip() and task.expected not in (None, ""), name
            for column in row:  # meta keeps the row
                assert column in task.meta, (name, column)


def test_mmlu_task_from_a_row(suites):
    t = load_dataset(_dataset(preset="mmlu", source=f"hf:{suites['mmlu']}"), Path("."))[1]
    assert t.id == "1" and t.expected == "C"  # the row index; ClassLabel 2 -> C
    assert t.meta["choices"] == ["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"]
    assert "about high school biology" in t.prompt and "\nC. Carbon dioxide\n" in t.prompt
    assert t.prompt.endswith("Answer:")


def test_arc_numeric_labels_become_letters_and_five_options(suites):
    ts = load_dataset(_dataset(preset="arc_challenge", source=f"hf:{suites['arc_challenge']}"), Path("."))
    assert [t.id for t in ts] == ["Mercury_7175875", "NYSEDREGENTS_2015_4_8", "Mercury_SC_401"]
    assert [t.expected for t in ts] == ["B", "B", "D"]
    assert "\nE. uranium" in ts[2].prompt
    easy = load_dataset(_dataset(preset="arc_easy", source=f"hf:{suites['arc_easy']}"), Path("."))
    assert [t.expected for t in easy] == ["A", "C"]


def test_gsm8k_expected_is_the_number_after_the_marks(suites):
    ts = load_dataset(_dataset(preset="gsm8k", source=f"hf:{suites['gsm8k']}"), Path("."))  # CSV
    assert [t.expected for t in ts] == [31, 5000, 51]


def test_hellaswag_context_and_markers(suites):
    ts = load_dataset(_dataset(preset="hellaswag", source=f"hf:{suites['hellaswag']}"), Path("."))  # JSON Lines
    assert ts[0].id == "24" and ts[0].expected == "D"
    assert "Roof shingle removal: A man is sitting on a roof. He..." in ts[0].prompt
    assert "[" not in ts[1].prompt and "How to bake a cake. Preheat the oven. Then" in ts[1].prompt
    assert ts[1].meta["choices"][1] == "paint the oven blue."


def test_truthfulqa_options_are_shuffled_the_same_way_every_time(suites):
    cfg = _dataset(preset="truthfulqa_mc1", source=f"hf:{suites['truthfulqa_mc1']}")
    a, b = load_dataset(cfg, Path(".")), load_dataset(cfg, Path("."))
    assert [t.meta["choices"] for t in a] == [t.meta["choices"] for t in b]
    for t, row in zip(a, fx.TRUTHFULQA_MC):
        true = row["mc1_targets"]["choices"][0]
        assert sorted(t.meta["choices"]) == sorted(row["mc1_targets"]["choices"])
        assert t.meta["choices"]["ABCDEFGH".index(t.expected)] == true
    assert {t.expected for t in a} != {"A"}  # not always the first option


def test_mbpp_tests_in_meta(suites):
    t = load_dataset(_dataset(preset="mbpp", source=f"hf:{suites['mbpp']}"), Path("."))[1]
    assert t.id == "12" and t.meta["test"].startswith("import math\nassert sort_matrix(")
    assert t.expected.startswith("def sort_matrix(M):")


def test_the_config_overrides_the_preset(suites):
    d = _dataset(preset="mmlu", source=f"hf:{suites['mmlu']}", evaluator="exact_match", limit=2,
                 options={"ignore_case": False}, hf={"split": "test"}, prompt="Q: {{ question }}")
    assert d.hf.config == "all" and d.evaluator == "exact_match" and d.options == {"ignore_case": False}
    ts = load_dataset(d, Path("."))
    assert [t.prompt for t in ts] == ["Q: What is 7 * 8?", "Q: Which gas do plants take in for photosynthesis?"]
    assert ts[0].expected == "B"  # still the preset's template
    g = _dataset(preset="gsm8k", options={"abs_tol": 0.5})
    assert g.options == {"extract": PRESETS["gsm8k"]["options"]["extract"], "abs_tol": 0.5}
    assert g.source == "hf:openai/gsm8k" and g.hf.config == "main" and g.hf.split == "test"


def test_relative_folder_against_the_config_file(suites, tmp_path):
    ts = load_dataset(_dataset(preset="mmlu", source="hf:./mmlu"), suites["mmlu"].parent)
    assert len(ts) == 4


def test_limit_and_ids(suites):
    base = dict(preset="arc_challenge", source=f"hf:{suites['arc_challenge']}")
    assert [t.id for t in load_dataset(_dataset(**base, limit=1), Path("."))] == ["Mercury_7175875"]
    picked = load_dataset(_dataset(**base, ids=["Mercury_SC_401", "Mercury_7175875"]), Path("."))
    assert [t.id for t in picked] == ["Mercury_SC_401", "Mercury_7175875"]
    with pytest.raises(DatasetError, match=r"ids not in .*\['nope'\]"):
        load_dataset(_dataset(**base, ids=["nope"]), Path("."))


def test_own_templates_system_and_native_values(suites):
    d = _dataset(source=f"hf:{suites['mmlu']}", hf={"config": "all"}, prompt="{{ question }}",
                 expected="{{ answer }}", id="mmlu-{{ row_index }}-{{ subject }}", system="You know {{ subject }}.",
                 meta={"n": "{{ choices | length }}", "first": "{{ row.choices[0] }}"}, evaluator="numeric")
    t = load_dataset(d, Path("."))[0]
    assert t.id == "mmlu-0-elementary_mathematics" and t.system == "You know elementary_mathematics."
    assert t.expected == 1 and t.meta["n"] == 4 and t.meta["first"] == 54


def test_a_missing_column_names_the_column_the_row_and_the_dataset(suites):
    d = _dataset(source=f"hf:{suites['mmlu']}", hf={"config": "all"}, prompt="{{ question }} {{ explanation }}")
    with pytest.raises(DatasetError) as exc:
        load_dataset(d, Path("."))
    msg = str(exc.value)
    assert f"dataset 'd' (hf:{suites['mmlu']}, config all, split test), row 0: field 'prompt': column " \
           f"'explanation' is missing (the row's columns: ['answer', 'choices', 'question', 'subject'])" == msg
    d = _dataset(preset="arc_easy", source=f"hf:{suites['arc_easy']}", meta={"choices": "{{ choices.texts }}"})
    with pytest.raises(DatasetError, match=r"row 0: field 'meta.choices': 'dict object' has no attribute 'texts' \(the row's columns: "):
        load_dataset(d, Path("."))


@pytest.mark.parametrize("fields, message", [
    ({"prompt": "{{ question "}, r"field 'prompt': template line 1: unexpected end of template"),
    ({"prompt": "{{ question }}", "expected": "{% if %}"}, r"field 'expected': template line 1"),
    ({"prompt": "{{ question }}", "expected": "{{ letters[answer + 30] }}"},
     r"row 0: field 'expected': str object has no element 31 \(the row's columns: "),
    ({"prompt": "{{ question }}", "expected": "{{ answer / 0 }}"},
     r"row 0: field 'expected': template failed: ZeroDivisionError"),
    ({"prompt": "{{ question }}", "id": "same"}, r"row 1: field 'id': duplicate id 'same'"),
    ({"prompt": "{{ '' }}"}, r"row 0: field 'prompt': the template rendered an empty prompt"),
    ({}, r"field 'prompt' \(a Jinja2 template over the row's columns\) is required"),
])
def test_template_errors_say_where(suites, fields, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(_dataset(source=f"hf:{suites['mmlu']}", hf={"config": "all"}, **fields), Path("."))


def test_folder_errors(suites, tmp_path):
    with pytest.raises(DatasetError, match=r"no folder .*nowhere \(hf:PATH reads a folder in the Hub's layout\)"):
        load_dataset(_dataset(source="hf:./nowhere", prompt="x"), tmp_path)
    with pytest.raises(DatasetError, match=r"hf.revision applies to Hub repositories"):
        load_dataset(_dataset(preset="mmlu", source=f"hf:{suites['mmlu']}", hf={"revision": "v1"}), tmp_path)
    with pytest.raises(DatasetError, match=r"split validation\): .*validation"):
        load_dataset(_dataset(preset="mmlu", source=f"hf:{suites['mmlu']}", hf={"split": "validation"}), tmp_path)
    with pytest.raises(DatasetError, match=r"config nope, split validation\): .*nope"):
        load_dataset(_dataset(preset="truthfulqa_mc1", source=f"hf:{suites['truthfulqa_mc1']}",
                              hf={"config": "nope"}), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"dataset 'd' \(hf:./empty, split test\): "):
        load_dataset(_dataset(source="hf:./empty", prompt="x"), tmp_path)
    with pytest.raises(DatasetError, match=r"name a Hub repository"):
        load_dataset(_dataset(source="hf:", prompt="x"), tmp_path)


def test_config_errors():
    with pytest.raises(ConfigError, match=r"datasets\[0\]\(d\): unknown preset 'mmlu2'; available: "
                                          r"\['arc_challenge', 'arc_easy', 'gsm8k', 'hellaswag', 'mbpp', 'mmlu'"):
        _dataset(preset="mmlu2")
    with pytest.raises(ConfigError, match=r"field\(s\) \['expected', 'prompt'\] apply to hf: sources only"):
        _dataset(source="builtin:facts", prompt="{{ q }}", expected="x")
    with pytest.raises(ConfigError, match=r"datasets\[0\]\(d\).hf.splitt: unknown field"):
        _dataset(preset="mmlu", hf={"splitt": "x"})


def test_limit_streams_instead_of_reading_the_whole_split(tmp_path):
    """limit: 50 on a 100,000-row split: rows are pulled one by one, the split is never turned into Python rows
    (measured: the loader's peak Python memory against materialising the split; bench/bench_hf_stream.py)."""
    import pyarrow.parquet as pq

    folder = tmp_path / "big"
    (folder / "data").mkdir(parents=True)
    path = folder / "data" / "test-00000-of-00001.parquet"
    datasets.Dataset.from_dict({"question": [f"What is {i} plus {i}?" for i in range(100_000)],
                                "answer": list(range(0, 200_000, 2))}).to_parquet(str(path))
    d = _dataset(source=f"hf:{folder}", prompt="{{ question }}", expected="{{ answer }}", evaluator="numeric",
                 limit=50)
    pulled = []
    real_open = hf_source.open_rows

    def counting(*args):
        for row in real_open(*args):
            pulled.append(row)
            yield row

    hf_source.open_rows, saved = counting, hf_source.open_rows
    try:
        tracemalloc.start()
        tasks = load_dataset(d, tmp_path)
        ours = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        hf_source.open_rows = saved
    assert len(tasks) == 50 and tasks[-1].expected == 98 and len(pulled) == 50
    tracemalloc.start()
    whole = pq.read_table(path).to_pylist()
    materialised = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(whole) == 100_000
    assert ours < materialised / 5, (ours, materialised)


HUB_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests import hf_fixtures as fx
    from benchwatch.config import parse_config
    from benchwatch.datasets import DatasetError, load_dataset
    fx.write_hub_cache(Path(sys.argv[1]), "acme/gsm-tiny", "main", "test", fx.GSM8K)
    def load(source):
        cfg = parse_config({"models": [{"name": "m", "backend": "reference"}],
                            "datasets": [{"name": "g", "preset": "gsm8k", "source": source}]})
        return load_dataset(cfg.datasets[0], Path("."))
    print("cached", [t.expected for t in load("hf:acme/gsm-tiny")])
    try:
        load("hf:acme/never-downloaded")
    except DatasetError as exc:
        print("missing", exc)
""")


def test_the_hub_cache_works_offline(tmp_path):
    env = {**cli_env(), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([PYTHON, "-c", HUB_SCRIPT, str(tmp_path / "hf")], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "cached [31, 5000, 51]" in lines
    missing = next(line for line in lines if line.startswith("missing"))
    assert "dataset 'g' (hf:acme/never-downloaded, config main, split test): ConnectionError: " in missing
    assert "never-downloaded" in missing


def test_a_stored_config_parses_again(suites):
    """The run stores cfg.model_dump(); resume and the server parse it again: defaults must not read as stated."""
    cfg = parse_config({"models": [{"name": "m", "backend": "reference"}, {"name": "j", "backend": "scripted",
                                                                           "judge_only": True}],
                        "datasets": [{"name": "f", "source": "builtin:facts"},
                                     {"name": "g", "preset": "gsm8k", "source": f"hf:{suites['gsm8k']}"}]})
    again = parse_config(cfg.model_dump(mode="json"))
    assert again.model_dump() == cfg.model_dump()
    assert [m.name for m in again.benchmarked_models] == ["m"]


def test_the_example_config_blocks_parse(suites):
    """config.example.yaml's commented hf blocks, uncommented, are valid (the preset one loads a local copy)."""
    import yaml

    from tests.conftest import ROOT

    lines = (ROOT / "config.example.yaml").read_text().splitlines()
    blocks, current = {}, None
    for line in lines:
        if line.startswith("  # - name: "):
            current = line.split(": ", 1)[1].split()[0]
            blocks[current] = [line.replace("# ", "", 1)]
        elif current and line.startswith("  #   ") and not line.startswith("  #   #"):
            blocks[current].append(line.replace("# ", "", 1))
        else:
            current = None
    for name in ("mmlu", "my-qa", "graded", "gsm8k"):
        raw = yaml.safe_load("\n".join(blocks[name]))[0]
        cfg = parse_config({"models": [{"name": "judge", "backend": "scripted"}], "datasets": [raw]})
        assert cfg.datasets[0].name == name
    mmlu = yaml.safe_load("\n".join(blocks["mmlu"]))[0]
    tasks = load_dataset(_dataset(**{**mmlu, "name": "d", "source": "hf:./mmlu"}), suites["mmlu"].parent)
    assert len(tasks) == 4
