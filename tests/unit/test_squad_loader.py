"""The SQuAD-format JSON loader (data -> paragraphs -> qas), on small files written here."""
from __future__ import annotations

import json

import pytest

from benchwatch.config import DatasetConfig
from benchwatch.datasets import DatasetError, load_dataset
from benchwatch.evaluators import get_evaluator

SQUAD = {"version": "1.1", "data": [
    {"title": "Lighthouse", "paragraphs": [
        {"context": "The lighthouse on Gull Point was built in 1871. Its lamp was first lit by Ada Morrow.",
         "qas": [{"id": "q1", "question": "When was the lighthouse built?",
                  "answers": [{"text": "1871", "answer_start": 42}, {"text": "in 1871", "answer_start": 39},
                              {"text": "1871", "answer_start": 42}]},
                 {"id": "q2", "question": "Who first lit the lamp?",
                  "answers": [{"text": "Ada Morrow", "answer_start": 75}]}]}]},
    {"title": "Garden", "paragraphs": [
        {"context": "Marta planted basil.", "qas": [
            {"id": "q3", "question": "What did Marta plant?", "answers": [{"text": "basil", "answer_start": 14}]}]}]},
]}


def _cfg(source, **kw):
    return DatasetConfig(name="squad", source=source, evaluator="extractive_qa", **kw)


def test_loads_questions_with_all_golds(tmp_path):
    (tmp_path / "dev.json").write_text(json.dumps(SQUAD))
    tasks = load_dataset(_cfg("squad:dev.json"), tmp_path)  # relative to the config's folder
    assert [t.id for t in tasks] == ["q1", "q2", "q3"]
    assert tasks[0].expected == ["1871", "in 1871"]  # repeats dropped, order kept
    assert "Gull Point" in tasks[0].prompt and "When was the lighthouse built?" in tasks[0].prompt
    assert tasks[0].meta["title"] == "Lighthouse" and tasks[2].meta["context"] == "Marta planted basil."
    ev = get_evaluator("extractive_qa", {"threshold": 0.5})
    assert [ev.evaluate(t, t.expected[0]).verdict for t in tasks] == ["PASS"] * 3
    assert [t.id for t in load_dataset(_cfg("squad:dev.json", ids=["q3", "q1"]), tmp_path)] == ["q3", "q1"]
    assert len(load_dataset(_cfg(f"squad:{tmp_path / 'dev.json'}", limit=2), tmp_path)) == 2


@pytest.mark.parametrize("content, words", [
    ("{not json", "dev.json:1: not valid JSON"),
    (json.dumps({"version": "1.1"}), "'data' list"),
    (json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}), "data[0].paragraphs[0]: field 'context'"),
    (json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q"}]}]}]}),
     "qas[0]: field 'answers' is missing"),
    (json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q", "answers": []}]}]}]}),
     "unanswerable"),
    (json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "a", "question": "q", "answers": [{"text": "c"}]},
        {"id": "a", "question": "q", "answers": [{"text": "c"}]}]}]}]}), "duplicate id 'a'"),
    (json.dumps({"data": []}), "no questions"),
])
def test_bad_files_say_where(tmp_path, content, words):
    (tmp_path / "dev.json").write_text(content)
    with pytest.raises(DatasetError, match=None) as exc:
        load_dataset(_cfg("squad:dev.json"), tmp_path)
    assert words in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(_cfg("squad:nope.json"), tmp_path)


def test_jsonl_beside_squad(tmp_path):
    """The JSONL loader still serves .jsonl paths; reading.jsonl-style tasks score the same way."""
    (tmp_path / "r.jsonl").write_text(json.dumps({"id": "r1", "prompt": "Who?", "expected": ["Ada Morrow"],
                                                  "meta": {"context": "Ada Morrow lit it."}}) + "\n")
    tasks = load_dataset(_cfg("r.jsonl"), tmp_path)
    assert get_evaluator("extractive_qa", {}).evaluate(tasks[0], "Ada Morrow").verdict == "PASS"
