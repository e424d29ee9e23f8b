"""Names files into a vocabulary and bigram pairs.

A names file is text, one name per line; each name wrapped in the boundary
symbol '.' gives len(name) + 1 (previous, next) pairs of symbol indices.
"""

import re
import unicodedata

import numpy as np

from bigram.console import PipelineError

MAX_VOCAB = 4096  # a 4096×4096 W keeps every stage under its 2 GiB budget

BOUNDARY = "."
# Control characters (tabs, NUL, ...) inside a name are almost always a TSV or
# a binary file read by mistake, not a name; so are Unicode's line and paragraph
# separators (U+2028, U+2029: they would split samples.txt) and a BOM inside a line.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def parse_names(data: bytes, source: str) -> list[str]:
    """Names from the bytes of a names file: one per line, UTF-8 (normalised to NFC),
    surrounding whitespace and blank lines ignored, CRLF (or CR) line ends and a BOM
    at the start of a line accepted; a comma refused (a CSV is not a names file)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PipelineError(
            f"{source} line {line}: byte 0x{data[e.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # NFC: "é" typed as one code point or as e + U+0301 is one name and one symbol.
    text = unicodedata.normalize("NFC", text)
    # A BOM at the start of a line: two files concatenated, each with its own.
    stripped = "\n".join(line.strip().removeprefix("\ufeff").strip() for line in text.split("\n"))
    dot = stripped.find(BOUNDARY)
    if dot >= 0:
        line = _line_of(stripped, dot)
        raise PipelineError(
            f"{source} line {line}: {stripped.split(chr(10))[line - 1]!r} contains "
            f"'{BOUNDARY}', the name boundary symbol; remove it from the name"
        )
    comma = stripped.find(",")
    if comma >= 0:
        line = _line_of(stripped, comma)
        raise PipelineError(
            f"{source} line {line}: {stripped.split(chr(10))[line - 1][:60]!r} contains ','; "
            "put one plain name per line (is this a CSV such as name,sex,count? keep its first "
            "column: `cut -d, -f1`)"
        )
    control = _CONTROL.search(stripped)
    if control:
        line, code = _line_of(stripped, control.start()), ord(control.group())
        if code > 0xFF:
            raise PipelineError(
                f"{source} line {line}: invisible character U+{code:04X} "
                f"({unicodedata.name(control.group())}) inside a name; remove it"
            )
        raise PipelineError(
            f"{source} line {line}: control character U+{code:04X} inside a name; put one "
            "plain name per line (is this a TSV or binary file?)"
        )
    names = [name for name in stripped.split("\n") if name]
    if not names:
        raise PipelineError(
            f"{source} has no names (empty or only blank lines); put one name per line"
        )
    return names


def index_dtype(n: int) -> type[np.unsignedinteger]:
    """The smallest unsigned integer type that holds 0..n-1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def encode(names: list[str]) -> tuple[list[str], np.ndarray]:
    """Vocabulary ('.' first, then the sorted characters seen) and the (2, N)
    array of bigram pairs of every name wrapped in '.'."""
    # ".emma.olivia." yields exactly the pairs of ".emma." then ".olivia.": the
    # boundary closing one name opens the next, so one vectorised pass suffices.
    text = BOUNDARY + BOUNDARY.join(names) + BOUNDARY
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    seen = np.zeros(0x110000, dtype=bool)
    seen[codepoints] = True
    symbols = np.flatnonzero(seen)
    symbols = np.concatenate([[ord(BOUNDARY)], symbols[symbols != ord(BOUNDARY)]])
    lookup = np.zeros(0x110000, dtype=index_dtype(len(symbols)))
    lookup[symbols] = np.arange(len(symbols))
    codes = lookup[codepoints]
    vocab = [chr(c) for c in symbols]
    return vocab, np.stack([codes[:-1], codes[1:]])


def check_vocabulary(V: int, source: str) -> None:
    """Refuse up front a vocabulary whose V×V matrices would not fit the stages'
    memory budget (2 GiB each), naming the size and the limit."""
    if V > MAX_VOCAB:
        raise PipelineError(
            f"{source} has {V - 1:,} distinct symbols: a vocabulary of {V:,} needs "
            f"{V * V * 8 / 2**30:.1f} GiB per V×V matrix; the limit is {MAX_VOCAB:,} symbols "
            "('.' included)"
        )
