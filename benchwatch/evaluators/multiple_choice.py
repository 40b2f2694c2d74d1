"""Multiple choice: which option did a free-form answer choose?

The task's `expected` is the correct letter (or a list of accepted letters; an integer is taken as an option's
index) and `meta.choices` the option texts, in letter order (A, B, C...). The answer is read in this order,
the first rule that finds something decides:

1. an explicit statement: "the answer is B", "Answer: (B)", "the correct option is B", "I choose B", or the
   same followed by an option's text ("The answer is Paris"). Several statements naming different options
   are ambiguous (FAIL).
2. the whole answer is one option: a bare letter in any form (`B`, `(B)`, `B)`, `B.`, `**B**`, `[B]`) or an
   option's text.
3. the answer opens with a letter form followed by more text: "B. Paris is...", "(B) because..." (when no
   other option's letter form follows: "(A) or (C)" falls to rule 4).
4. any mention: `(B)`, `B)`, `**B**`, "option B" / "choice B", a line starting "B." or "B:", an option's
   text (an option whose text only appears inside a longer matching option is not counted). Exactly one
   option must be mentioned; more is ambiguous (FAIL), none is FAIL.

PASS only when exactly one option is chosen and it is an expected one. The detail says what was chosen, how it
was read (`read_as`), and every option the answer mentioned (`mentioned`).
"""
from __future__ import annotations

import re
import string
from typing import Any

from ..datasets import Task
from .base import Evaluator, EvaluatorError, Verdict, register

LETTERS = string.ascii_uppercase
_PUNCT = str.maketrans({c: " " for c in string.punctuation})

# A letter token: upper case anywhere; lower case only when marked off by punctuation or the end ("a" is a word).
_TOKEN = r"[\(\[*_\s]*(?:(?P<up>[A-Z])(?![A-Za-z0-9'’])|(?P<low>[a-z])(?=[\)\]*_]*\s*(?:[.,;:!?)\]]|$)))"
_CUE = (r"(?i:(?:the\s+)?(?:correct|right|best|final|most\s+plausible|most\s+likely)?\s*(?:answer|option|choice)"
        r"\s*(?:(?:is|would\s+be|will\s+be|should\s+be|must\s+be)\s*[:=-]?|[:=-])\s*(?:option\s+|choice\s+|letter\s+)?"
        r"|\bI\s+(?:would\s+)?(?:choose|pick|select|go\s+with)\s+(?:option\s+|choice\s+)?)")
_EXPLICIT = re.compile(_CUE + _TOKEN, re.M)
_EXPLICIT_TEXT = re.compile(_CUE + r"(?P<rest>[^\n]*)", re.M)
_BARE = re.compile(r"^\W*(?:(?i:option|choice|answer)\s*:?\s*)?[\(\[*_]*(?P<l>[A-Za-z])[\)\]*_]*[.:]?\W*$")
_LEADING = re.compile(r"^[\s*_]*[\(\[]?(?P<l>[A-Z])(?:[\)\]]|\*\*|[.:](?=\s))")
_MENTIONS = [
    (re.compile(r"\((?P<l>[A-Za-z])\)"), "(X)"),
    (re.compile(r"\[(?P<l>[A-Za-z])\]"), "[X]"),
    (re.compile(r"(?<![\w(])(?P<l>[A-Z])\)"), "X)"),
    (re.compile(r"\*\*\s*(?P<l>[A-Za-z])\s*\*\*"), "**X**"),
    (re.compile(r"(?i:\b(?:option|choice|letter)\s+)(?P<l>[A-Z])\b"), "option X"),
    (re.compile(r"^[\s*_]*(?P<l>[A-Z])[.:](?=\s|$)", re.M), "X. at a line's start"),
]


def _norm(text: str) -> str:
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _letter(m: re.Match[str]) -> str:
    groups = m.groupdict()
    return (groups.get("l") or groups.get("up") or groups.get("low") or "").upper()


@register("multiple_choice")
class MultipleChoice(Evaluator):
    """No options: the task carries the choices (meta.choices) and the expected letter(s)."""

    def __init__(self, opts: dict[str, Any]):
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for multiple_choice")

    def evaluate(self, task: Task, response: str) -> Verdict:
        choices = task.meta.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise EvaluatorError(f"task {task.id}: multiple_choice needs the option texts in meta.choices")
        n = len(choices)
        valid = LETTERS[:n]
        expected = _expected_letters(task, valid)
        chosen, read_as, mentioned = read_choice(response, [str(c) for c in choices])
        detail: dict[str, Any] = {
            "expected": expected[0] if len(expected) == 1 else expected,
            "expected_text": str(choices[valid.index(expected[0])])[:300],
            "chosen": chosen, "chosen_text": str(choices[valid.index(chosen)])[:300] if chosen else None,
            "read_as": read_as, "mentioned": mentioned, "answer": response.strip()[:500],
        }
        return Verdict("PASS" if chosen is not None and chosen in expected else "FAIL", detail)


def _expected_letters(task: Task, valid: str) -> list[str]:
    raw = task.expected if isinstance(task.expected, list) else [task.expected]
    out: list[str] = []
    for e in raw:
        if isinstance(e, int) and not isinstance(e, bool) and 0 <= e < len(valid):
            out.append(valid[e])
        elif isinstance(e, str) and e.strip().upper() in valid and len(e.strip()) == 1:
            out.append(e.strip().upper())
        else:
            raise EvaluatorError(f"task {task.id}: 'expected' must be a letter among {list(valid)} (or a list of "
                                 f"them), got {task.expected!r}")
    return out


def read_choice(response: str, choices: list[str]) -> tuple[str | None, str, list[str]]:
    """(the chosen letter or None, how the answer was read, every option mentioned)."""
    valid = LETTERS[:len(choices)]
    text = response.strip()
    norm_choices = [_norm(c) for c in choices]

    # 1. explicit statements, by letter or by an option's text
    stated: dict[str, str] = {}
    for m in _EXPLICIT.finditer(text):
        letter = _letter(m)
        if letter in valid:
            stated.setdefault(letter, m.group(0).strip())
    for m in _EXPLICIT_TEXT.finditer(text):
        rest = _norm(m.group("rest"))
        hits = [valid[i] for i, c in enumerate(norm_choices) if c and (rest == c or rest.startswith(c + " "))]
        if len(hits) == 1 and not any(s in m.group(0) for s in stated.values()):
            stated.setdefault(hits[0], m.group(0).strip()[:120])
    if len(stated) == 1:
        (letter, quote), = stated.items()
        return letter, f"explicit statement: {quote!r}", sorted(stated)
    if len(stated) > 1:
        return None, "ambiguous: the answer states several options: " + \
            "; ".join(f"{q!r}" for q in stated.values()), sorted(stated)

    # 2. the whole answer is one option (a bare letter form, or an option's text)
    bare = _BARE.match(text)
    if bare and bare.group("l").upper() in valid and (bare.group("l").isupper() or len(text) <= 4):
        return bare.group("l").upper(), f"bare letter: {text!r}", [bare.group("l").upper()]
    whole = _norm(text)
    exact = [valid[i] for i, c in enumerate(norm_choices) if c and whole == c]
    if len(exact) == 1:
        return exact[0], "the answer is an option's text", exact

    # 3. a leading letter form followed by more text (and no other letter form after it)
    found: dict[str, str] = {}
    for pattern, form in _MENTIONS:
        for m in pattern.finditer(text):
            letter = _letter(m)
            if letter in valid:
                found.setdefault(letter, f"{form}: {m.group(0).strip()!r}")
    lead = _LEADING.match(text)
    if lead and lead.group("l") in valid and set(found) <= {lead.group("l")}:
        return lead.group("l"), f"leading letter: {text[:lead.end()].strip()!r}", [lead.group("l")]

    # 4. mentions anywhere: letter forms (above) and option texts
    for letter, how in _text_mentions(whole, norm_choices, valid).items():
        found.setdefault(letter, how)
    mentioned = sorted(found)
    if len(found) == 1:
        (letter, how), = found.items()
        return letter, f"only option mentioned ({how})", mentioned
    if found:
        return None, f"ambiguous: the answer mentions options {mentioned}", mentioned
    return None, "no option recognised in the answer", []


def _text_mentions(whole: str, norm_choices: list[str], valid: str) -> dict[str, str]:
    """Options whose text occurs in the answer as whole words, not only inside a longer option's match."""
    padded = f" {whole} "
    spans: dict[int, list[tuple[int, int]]] = {}
    for i, c in enumerate(norm_choices):
        if not c:
            continue
        needle = f" {c} "
        spans[i] = [(m.start(), m.start() + len(needle)) for m in re.finditer(f"(?={re.escape(needle)})", padded)]
    out: dict[str, str] = {}
    for i, own in spans.items():
        free = [s for s in own if not any(j != i and len(norm_choices[j]) > len(norm_choices[i]) and
                                          a <= s[0] and s[1] <= b for j, other in spans.items() for a, b in other)]
        if free:
            out[valid[i]] = f"option text {norm_choices[i][:60]!r}"
    return out
