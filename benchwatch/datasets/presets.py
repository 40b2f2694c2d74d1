"""Presets: the common suites as ready-made `hf:` dataset blocks (`preset: NAME` in a dataset of the config).

A preset gives `source`, `hf` (config, split), the row templates, `evaluator` and `options`; anything the
config states overrides it (`hf`, `options` and `meta` are merged key by key). Every prompt is zero-shot and
generative: the model writes an answer and an evaluator reads it (docs/datasets.md says, per preset, which
published format it follows and how its numbers may differ from log-likelihood scoring).

This module is data only (no imports from the package): the config's validator applies it.
"""
from __future__ import annotations

from typing import Any

# Lettered options, one per line: "A. first option".
_OPTIONS = "{% for c in meta.choices %}\n{{ letters[loop.index0] }}. {{ c }}{% endfor %}"
_MC_INSTRUCTION = "Reply with the letter of the correct answer."

PRESETS: dict[str, dict[str, Any]] = {
    # MMLU (Hendrycks et al. 2021): 57 subjects, 4 options; the paper's and lm-evaluation-harness's `mmlu`
    # layout (subject line, question, "A. ..." options, "Answer:"), zero-shot, with the instruction line.
    "mmlu": {
        "source": "hf:cais/mmlu",
        "hf": {"config": "all", "split": "test"},
        "prompt": "The following is a multiple choice question about {{ subject | replace('_', ' ') }}. "
                  + _MC_INSTRUCTION + "\n\n{{ question | trim }}" + _OPTIONS + "\nAnswer:",
        "meta": {"choices": "{{ choices }}"},
        "expected": "{{ letters[answer] }}",
        "evaluator": "multiple_choice",
    },
    # GSM8K (Cobbe et al. 2021): grade-school maths; the gold answer ends with "#### NUMBER". Prompted like
    # lm-evaluation-harness's `gsm8k` ("Question: ... Answer:") zero-shot, asking for the "####" line; scored
    # like its strict match (the number after ####) with its flexible fallback (the last number).
    "gsm8k": {
        "source": "hf:openai/gsm8k",
        "hf": {"config": "main", "split": "test"},
        "prompt": "Solve the math problem. Reason step by step, then write the final answer alone on the last "
                  "line as \"#### <number>\".\n\nQuestion: {{ question | trim }}\nAnswer:",
        "expected": "{{ answer.split('####')[-1] | trim | replace(',', '') }}",
        "evaluator": "numeric",
        "options": {"extract": r"####\s*(\S+)"},
    },
    # ARC (Clark et al. 2018), Challenge and Easy sets: 3-5 options labelled A-E or 1-5; shown as letters.
    "arc_challenge": {
        "source": "hf:allenai/ai2_arc",
        "hf": {"config": "ARC-Challenge", "split": "test"},
        "id": "{{ id }}",
        "prompt": "Question: {{ question | trim }}" + _OPTIONS + "\n\n" + _MC_INSTRUCTION + "\nAnswer:",
        "meta": {"choices": "{{ choices.text }}"},
        "expected": "{{ letters[choices.label.index(answerKey)] }}",
        "evaluator": "multiple_choice",
    },
    "arc_easy": {
        "source": "hf:allenai/ai2_arc",
        "hf": {"config": "ARC-Easy", "split": "test"},
        "id": "{{ id }}",
        "prompt": "Question: {{ question | trim }}" + _OPTIONS + "\n\n" + _MC_INSTRUCTION + "\nAnswer:",
        "meta": {"choices": "{{ choices.text }}"},
        "expected": "{{ letters[choices.label.index(answerKey)] }}",
        "evaluator": "multiple_choice",
    },
    # HellaSwag (Zellers et al. 2019): pick the most plausible ending. Context built as lm-evaluation-harness's
    # `hellaswag` does (activity label, ctx_a, capitalised ctx_b, scraping markers dropped); the test split has
    # no labels, so the validation split is the one scored.
    "hellaswag": {
        "source": "hf:Rowan/hellaswag",
        "hf": {"split": "validation"},
        "id": "{{ ind }}",
        "prompt": "Which ending completes the text most plausibly? " + _MC_INSTRUCTION + "\n\n"
                  "{{ (activity_label ~ ': ' ~ ctx_a ~ ' ' ~ ctx_b | capitalize) | drop_tags }}..." + _OPTIONS
                  + "\nAnswer:",
        "meta": {"choices": "{{ endings | map('drop_tags') | list }}"},
        "expected": "{{ letters[label | int] }}",
        "evaluator": "multiple_choice",
    },
    # TruthfulQA MC1 (Lin et al. 2022): one true answer among several. The dataset lists the true answer first,
    # so the options are shown in a fixed shuffled order per question (else "A" would always be right).
    "truthfulqa_mc1": {
        "source": "hf:truthfulqa/truthful_qa",
        "hf": {"config": "multiple_choice", "split": "validation"},
        "prompt": "Q: {{ question | trim }}" + _OPTIONS + "\n\n" + _MC_INSTRUCTION + "\nAnswer:",
        "meta": {"choices": "{{ mc1_targets.choices | shuffle_with(question) }}"},
        "expected": "{{ letters[meta.choices.index(mc1_targets.choices[mc1_targets.labels.index(1)])] }}",
        "evaluator": "multiple_choice",
    },
    # MBPP (Austin et al. 2021): short Python problems with three assert tests; the paper's prompt (task text
    # and its tests) asking for one fenced block; the tests run in the code sandbox.
    "mbpp": {
        "source": "hf:google-research-datasets/mbpp",
        "hf": {"config": "full", "split": "test"},
        "id": "{{ task_id }}",
        "prompt": "You are an expert Python programmer, and here is your task: {{ text | trim }} Your code should "
                  "pass these tests:\n\n{{ test_list | join('\\n') }}\n\nReply with the code in one ```python "
                  "code block.",
        "expected": "{{ code }}",
        "meta": {"test": "{{ test_setup_code }}\n{{ test_list | join('\\n') }}\n"},
        "evaluator": "code_execution",
    },
}

_MERGED = ("hf", "options", "meta")  # merged key by key; every other field is replaced whole


def apply_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """The dataset's raw config with the preset's fields filled in where the config does not state them."""
    name = raw.get("preset")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    out = dict(raw)
    for key, value in PRESETS[name].items():
        if key in _MERGED and isinstance(raw.get(key), dict):
            out[key] = {**value, **raw[key]}
        elif key not in raw:
            out[key] = value
    return out
