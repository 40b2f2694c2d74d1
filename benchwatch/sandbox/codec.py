"""Plain data across the sandbox's channel: Python's built-in value types in a small tagged binary encoding.

One tag byte per value: N None, T True, F False; i int and f float as length-prefixed text (hex() and
float.hex(): exact, nan and inf included, no digit limit); c complex (two f); s str (UTF-8, lone surrogates
kept); b bytes; l list, t tuple, S set, Z frozenset, d dict (a count, then the items; a dict's keys and values
alternate). Lengths and counts are 4-byte big-endian. Only these exact types cross: a subclass of int, an
object whose `__eq__` is always true, a generator, a bytearray are refused by `encode`. `decode` builds fresh
built-in values and nothing else, so whatever arrives cannot run code on the receiving side; anything that is
not a valid encoding is refused. Frames are a 4-byte length and one encoded value (a dict for messages).

No json, no imports: this file is also pasted into the sandbox's scripts, where start-up time counts (json
pulls in re, enum, collections...). Keep it to builtins and module-level functions.
"""
import os

MAX_DEPTH = 100
MAX_FRAME = 16 << 20
MAX_ITEMS = 200_000  # values in one frame: decoding one stays well under a second
_SEQ_TAGS = {list: b"l", tuple: b"t", set: b"S", frozenset: b"Z"}
_SEQ_TYPES = {ord("l"): list, ord("t"): tuple, ord("S"): set, ord("Z"): frozenset}


class NotPlain(ValueError):
    """A value that is not plain data, or bytes that are not a valid encoding of one."""


def _type_name(value):
    t = type(value)
    mod = getattr(t, "__module__", "")
    return t.__qualname__ if mod in ("builtins", "__solution__", "", None) else f"{mod}.{t.__qualname__}"


def _text(tag, text, out):
    data = text.encode("ascii")
    out.append(tag + len(data).to_bytes(4, "big") + data)


def _enc(value, out, depth):
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    t = type(value)
    if value is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if value else b"F")
    elif t is int:
        _text(b"i", hex(value), out)
    elif t is float:
        _text(b"f", value.hex(), out)
    elif t is str:
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s" + len(data).to_bytes(4, "big") + data)
    elif t is bytes:
        out.append(b"b" + len(value).to_bytes(4, "big") + value)
    elif t is complex:
        out.append(b"c")
        _text(b"f", value.real.hex(), out)
        _text(b"f", value.imag.hex(), out)
    elif t in _SEQ_TAGS:
        out.append(_SEQ_TAGS[t] + len(value).to_bytes(4, "big"))
        for v in value:
            _enc(v, out, depth + 1)
    elif t is dict:
        out.append(b"d" + len(value).to_bytes(4, "big"))
        for k, v in value.items():
            _enc(k, out, depth + 1)
            _enc(v, out, depth + 1)
    else:
        raise NotPlain(f"a {_type_name(value)}, which is not plain data")


def encode(value):
    """The bytes of a plain value; NotPlain for anything else."""
    out = []
    _enc(value, out, 0)
    return b"".join(out)


class _Reader:
    def __init__(self, data):
        self.data, self.pos, self.items = data, 0, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise NotPlain("truncated value")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def size(self):
        return int.from_bytes(self.take(4), "big")

    def text(self, tag):
        if self.take(1)[0] != tag:
            raise NotPlain("malformed number")
        try:
            return self.take(self.size()).decode("ascii")
        except UnicodeDecodeError:
            raise NotPlain("malformed number") from None

    def value(self, depth):
        if depth > MAX_DEPTH:
            raise NotPlain(f"nested deeper than {MAX_DEPTH}")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise NotPlain(f"more than {MAX_ITEMS} values in one frame")
        tag = self.take(1)[0]
        try:
            if tag == 78:  # N
                return None
            if tag == 84:  # T
                return True
            if tag == 70:  # F
                return False
            if tag == 105:  # i
                self.pos -= 1
                text = self.text(105)
                if not text.lstrip("-").startswith("0x"):
                    raise NotPlain("malformed int")
                return int(text, 16)
            if tag == 102:  # f
                self.pos -= 1
                return float.fromhex(self.text(102))
            if tag == 99:  # c
                return complex(float.fromhex(self.text(102)), float.fromhex(self.text(102)))
            if tag == 115:  # s
                return self.take(self.size()).decode("utf-8", "surrogatepass")
            if tag == 98:  # b
                return self.take(self.size())
            if tag in _SEQ_TYPES:
                n = self.size()
                if n > len(self.data) - self.pos:  # every item takes at least a byte
                    raise NotPlain("truncated value")
                return _SEQ_TYPES[tag]([self.value(depth + 1) for _ in range(n)])
            if tag == 100:  # d
                n = self.size()
                if 2 * n > len(self.data) - self.pos:
                    raise NotPlain("truncated value")
                out = {}
                for _ in range(n):
                    k = self.value(depth + 1)
                    out[k] = self.value(depth + 1)
                return out
        except (TypeError, ValueError, OverflowError) as exc:  # unhashable key, bad digits, bad UTF-8
            if isinstance(exc, NotPlain):
                raise
            raise NotPlain(f"invalid value: {exc}") from None
        raise NotPlain(f"unknown tag {bytes([tag])!r}")


def decode(data):
    """The plain value `data` encodes; NotPlain for anything that is not exactly one valid encoding."""
    reader = _Reader(bytes(data))
    value = reader.value(0)
    if reader.pos != len(reader.data):
        raise NotPlain("trailing bytes after the value")
    return value


def frame(message):
    """The bytes of one frame (a dict of plain values); NotPlain if it holds anything else."""
    data = encode(message)
    return len(data).to_bytes(4, "big") + data


def send(fd, message):
    """Write one frame to fd."""
    data = frame(message)
    while data:
        n = os.write(fd, data)
        data = data[n:]


def recv(fd):
    """Read one frame from fd: a dict with str keys. EOFError when the other side is gone; ValueError (NotPlain
    included) for a malformed frame."""
    size = int.from_bytes(_read_exact(fd, 4), "big")
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes (at most {MAX_FRAME})")
    message = decode(_read_exact(fd, size))
    if type(message) is not dict or not all(type(k) is str for k in message):
        raise ValueError("a frame is not a message (a dict with str keys)")
    return message


def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the channel closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)

