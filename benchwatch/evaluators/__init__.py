"""Evaluators turn (task, response) into a verdict with its detail.

PASS / FAIL is the model's verdict; ERROR is for the harness or backend failing (the runner sets it).
Each evaluator registers itself by name where it is written (`@register("numeric")`, the EVALUATORS registry of
benchwatch/registry.py); `get_evaluator(name, options)` builds one from the config.
"""
from .base import EVALUATORS, Evaluator, EvaluatorError, Verdict, available, get_evaluator, register

__all__ = ["EVALUATORS", "Evaluator", "EvaluatorError", "Verdict", "available", "get_evaluator", "register"]
