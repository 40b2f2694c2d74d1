import pytest

from benchwatch.config import DatasetConfig
from benchwatch.datasets import DatasetError, load_dataset, parse_jsonl


@pytest.mark.parametrize("name", ["arithmetic", "facts", "reading"])
def test_builtin_sets_have_20_tasks_or_more(tmp_path, name):
    tasks = load_dataset(DatasetConfig(name=name, source=f"builtin:{name}"), tmp_path)
    assert len(tasks) >= 20
    assert len({t.id for t in tasks}) == len(tasks)
    assert all(t.expected is not None for t in tasks)


def test_limit_and_ids(tmp_path):
    ts = load_dataset(DatasetConfig(name="a", source="builtin:arithmetic", limit=3), tmp_path)
    assert [t.id for t in ts] == ["arith-01", "arith-02", "arith-03"]
    ts = load_dataset(DatasetConfig(name="a", source="builtin:arithmetic", ids=["arith-05", "arith-02"]), tmp_path)
    assert [t.id for t in ts] == ["arith-05", "arith-02"]
    with pytest.raises(DatasetError, match="ids not in"):
        load_dataset(DatasetConfig(name="a", source="builtin:arithmetic", ids=["zzz"]), tmp_path)


@pytest.mark.parametrize("text, words", [
    ('{"id": 1, "prompt": "x"}\n{"id": 2, "prompt": "y"\n', "data.jsonl:2: not valid JSON"),
    ('{"id": 1}\n', "data.jsonl:1: field 'prompt' is missing"),
    ('{"id": 1, "prompt": "x"}\n\n{"id": 1, "prompt": "y"}\n', "data.jsonl:3: field 'id': duplicate"),
    ('[1, 2]\n', "data.jsonl:1: expected a JSON object"),
    ('{"id": 1, "prompt": "x", "answer": 3}\n', "data.jsonl:1: unknown field(s) ['answer']"),
    ('', "no tasks"),
])
def test_malformed_lines_name_file_and_line(text, words):
    with pytest.raises(DatasetError) as exc:
        parse_jsonl(text, "data.jsonl")
    assert words in str(exc.value)


def test_user_jsonl_relative_to_config(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"id": "a", "prompt": "2+2?", "expected": 4, "options": {"abs_tol": 0.5}}\n')
    ts = load_dataset(DatasetConfig(name="m", source="mine.jsonl"), tmp_path)
    assert ts[0].id == "a" and ts[0].options == {"abs_tol": 0.5}


def test_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'nowhere'"):  # the config refuses it...
        DatasetConfig(name="m", source="nowhere")
    with pytest.raises(DatasetError, match="unknown source"):  # ...and so does the loader, given one unchecked
        load_dataset(DatasetConfig.model_construct(name="m", source="nowhere", limit=None, ids=None), tmp_path)
