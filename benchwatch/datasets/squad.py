"""SQuAD-format JSON (data -> paragraphs -> qas) as tasks for the extractive_qa evaluator: `source: squad:PATH`.

Each question becomes a task: the prompt carries the passage and the question, `expected` is the list of gold
answer texts (SQuAD v1.1 keeps several per question), meta keeps the context and the title.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config import DatasetConfig
from ..safe_data import find_problem
from .jsonl import read_source_file
from .sources import register_source
from .task import DatasetError, Task

PROMPT = ("Read the passage and answer the question with a short phrase copied from the passage.\n\n"
          "Passage: {context}\n\nQuestion: {question}")


def parse_squad(obj: object, where: str) -> list[Task]:
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DatasetError(f"{where}: expected a SQuAD object with a 'data' list at the top level")
    tasks: list[Task] = []
    seen: set[str] = set()
    for a, article in enumerate(obj["data"]):
        at = f"{where}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DatasetError(f"{at}: field 'paragraphs' must be a list")
        for p, para in enumerate(article["paragraphs"]):
            pt = f"{at}.paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise DatasetError(f"{pt}: field 'context' must be a string")
            if not isinstance(para.get("qas"), list):
                raise DatasetError(f"{pt}: field 'qas' must be a list")
            for q, qa in enumerate(para["qas"]):
                qt = f"{pt}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise DatasetError(f"{qt}: expected an object")
                for name in ("id", "question", "answers"):
                    if name not in qa:
                        raise DatasetError(f"{qt}: field '{name}' is missing")
                answers = qa["answers"]
                if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                            for x in answers):
                    raise DatasetError(f"{qt}: field 'answers' must be a list of objects with a 'text'")
                if not answers:  # SQuAD 2.0 unanswerable questions: v1.1 scoring has no gold for them
                    raise DatasetError(f"{qt}: no answers (unanswerable SQuAD 2.0 questions are not supported)")
                tid = str(qa["id"])
                if tid in seen:
                    raise DatasetError(f"{qt}: field 'id': duplicate id {tid!r}")
                seen.add(tid)
                golds = list(dict.fromkeys(x["text"] for x in answers))  # keep order, drop repeats
                tasks.append(Task(id=tid, prompt=PROMPT.format(context=para["context"], question=qa["question"]),
                                  expected=golds, meta={"context": para["context"], "question": qa["question"],
                                                        "title": article.get("title")}))
    if not tasks:
        raise DatasetError(f"{where}: no questions")
    return tasks


def load_squad(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    path, text = read_source_file(source.split(":", 1)[1], cfg, base_dir)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from None
    problem = find_problem(obj, max_depth=64)
    if problem is not None:
        raise DatasetError(f"{path}: field '{problem.field()}': {problem.reason}")
    return parse_squad(obj, str(path))


register_source("squad:", load_squad)
