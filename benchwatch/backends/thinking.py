"""Split `<think>…</think>` reasoning out of streamed content, tags possibly cut across chunks."""
from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Feed raw text pieces; get (kind, text) pieces back, kind 'thinking' or 'visible'."""

    def __init__(self) -> None:
        self.inside = False
        self._held = ""  # a tail that may be the start of a tag

    @property
    def kind(self) -> str:
        """The kind of text at this point of the stream."""
        return "thinking" if self.inside else "visible"

    def feed(self, text: str) -> list[tuple[str, str]]:
        if not self._held and "<" not in text:  # most pieces: no tag, nor the start of one (tags begin with "<")
            return [(self.kind, text)] if text else []
        buf, out = self._held + text, []
        self._held = ""
        while buf:
            tag = CLOSE if self.inside else OPEN
            idx = buf.find(tag)
            if idx >= 0:
                if idx:
                    out.append((self.kind, buf[:idx]))
                buf = buf[idx + len(tag):]
                self.inside = not self.inside
                continue
            # keep back the longest suffix that is a prefix of the tag we wait for
            keep = next((k for k in range(min(len(tag) - 1, len(buf)), 0, -1) if tag.startswith(buf[-k:])), 0)
            emit = buf[: len(buf) - keep]
            if emit:
                out.append((self.kind, emit))
            self._held = buf[len(buf) - keep:]
            break
        return out

    def flush(self) -> list[tuple[str, str]]:
        held, self._held = self._held, ""
        return [(self.kind, held)] if held else []
