"""A names file that is not a clean list of names, or not a file: each case is bytes or a
path in and the prepare stage's result out, either what it counted or one exact line
naming the file and the fix, with nothing written."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram.console import PipelineError
from bigram.names import encode, parse_names
from tests.conftest import error_line, read_json, set_params, stage

NAMES = "data/names.txt"
HINT = "point data.names in params.yaml at a names file (one name per line)"

# --- the bytes of the names file ---------------------------------------------------

ACCEPTED = {  # content -> (names, pairs, vocabulary)
    "crlf": (b"emma\r\nava\r\n", 2, 9, ".aemv"),
    "cr only": (b"emma\rava", 2, 9, ".aemv"),
    "utf-8 bom": (b"\xef\xbb\xbfemma\nava\n", 2, 9, ".aemv"),
    "surrounding whitespace": (b"  emma  \n\tava \n", 2, 9, ".aemv"),
    "blank lines": (b"\n\nemma\n\n \nava\n\n", 2, 9, ".aemv"),
    "one character": (b"a\n", 1, 2, ".a"),
    "10,000 characters": (b"ab" * 5000, 1, 10001, ".ab"),
    "duplicates kept": (b"ava\nava\n", 2, 8, ".av"),
    "uppercase and non-ascii": ("Zoë\nzoe\n".encode(), 2, 8, ".Zeozë"),
    "inner space": (b"mary ann\n", 1, 9, ". amnry"),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted_names_files(project, case):
    content, names, pairs, vocab = ACCEPTED[case]
    (project / NAMES).write_bytes(content)
    stage(project, "prepare")
    assert read_json(project / "metrics/prepare.json") == {
        "names": names,
        "pairs": pairs,
        "vocab_size": len(vocab),
    }
    assert read_json(project / "data/prepared/vocab.json") == list(vocab)


REJECTED = {  # content -> the exact message
    "empty": (b"", f"{NAMES} has no names (empty or only blank lines); put one name per line"),
    "only blank lines": (
        b"\n  \r\n\t\n",
        f"{NAMES} has no names (empty or only blank lines); put one name per line",
    ),
    "tab inside a name": (
        b"emma\nan\tna\n",
        f"{NAMES} line 2: control character U+0009 inside a "
        "name; put one plain name per line (is this a TSV or "
        "binary file?)",
    ),
    "not utf-8": (
        b"emma\nzo\xeb\n",
        f"{NAMES} line 2: byte 0xeb is not UTF-8; save the file as UTF-8",
    ),
    "boundary inside a name": (
        b"emma\nj.r.\n",
        f"{NAMES} line 2: 'j.r.' contains '.', the name boundary symbol; remove it from the name",
    ),
    "binary (png)": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        f"{NAMES} line 1: byte 0x89 is not UTF-8; save the file as UTF-8",
    ),
    "binary (valid utf-8)": (
        b"ab\x00\x01\x02cd",
        f"{NAMES} line 1: control character U+0000 inside "
        "a name; put one plain name per line (is this a "
        "TSV or binary file?)",
    ),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejected_names_files(project, case):
    content, message = REJECTED[case]
    (project / NAMES).write_bytes(content)
    assert error_line(stage(project, "prepare", check=False)) == message
    assert not (project / "data/prepared").exists()
    assert not (project / "metrics").exists()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.text(max_size=12), max_size=20).map(lambda lines: "\n".join(lines).encode()),
    )
)
def test_prepare_either_succeeds_with_invariants_or_fails_as_documented(data):
    try:
        names = parse_names(data, "f")
    except PipelineError as e:
        assert len(str(e).splitlines()) == 1
        assert str(e).startswith(("f has no names", "f line "))
        return
    vocab, pairs = encode(names)
    assert vocab[0] == "." and set(vocab) == set("".join(names)) | {"."}
    assert len(set(vocab)) == len(vocab)
    assert pairs.shape == (2, sum(len(n) + 1 for n in names))
    assert int(pairs.max()) < len(vocab)
    decoded = "".join(vocab[i] for i in pairs[0]) + "."
    assert decoded == "." + ".".join(names) + "."


def test_a_vocabulary_too_large_for_the_memory_budget_is_refused_up_front(project):
    symbols = [chr(0x4E00 + i) for i in range(20_000)]
    names = ["".join(symbols[i : i + 5]) for i in range(0, 20_000, 5)]
    (project / NAMES).write_text("\n".join(names) + "\n")
    assert error_line(stage(project, "prepare", check=False)) == (
        "data/names.txt has 20,000 distinct symbols: a vocabulary of 20,001 needs 3.0 GiB per "
        "V×V matrix; the limit is 4,096 symbols ('.' included)"
    )
    assert not (project / "data/prepared").exists()


# --- what data.names points at ---------------------------------------------------------


def fifo(project):
    os.mkfifo(project / "names.fifo")


def dev_zero(project):
    os.symlink("/dev/zero", project / "data/zero.txt")


def sparse_49_mib(project):
    with open(project / "huge.txt", "wb") as f:
        f.truncate(49 * 2**20)  # sparse: 49 MiB that cost nothing to make


def symlink_loop(project):
    os.symlink("loop.txt", project / "loop.txt")


OUTSIDE = (
    "params.yaml: data.names = {!r} is outside the project: DVC cannot cache it and queued "
    "experiments, which run in a copy of the project, cannot see it; copy it into data/ and "
    "track it with `dvc add` (docs/your-own-names.md)"
)

REFUSED_PATHS = {  # case -> (what the test makes first, data.names, the exact message)
    "missing": (
        None,
        "nope.txt",
        "nope.txt: no such file; if it is your names list, put it inside the project and "
        "track it with `dvc add nope.txt` (queued experiments and clones see only what git or "
        "DVC tracks), or point data.names in params.yaml at the right file",
    ),
    "a directory": (None, "data", f"data is a directory, not a file; {HINT}"),
    # refused before it is opened: reading a FIFO waits for a writer forever
    "a fifo": (fifo, "names.fifo", f"names.fifo is a FIFO (named pipe), not a file; {HINT}"),
    # refused before it is read: /dev/zero never ends
    "a link to /dev/zero": (
        dev_zero,
        "data/zero.txt",
        "data/zero.txt is a symbolic link to a file outside the project, which the pipeline "
        "does not read: copy the file into data/ and track it with `dvc add` "
        "(docs/your-own-names.md)",
    ),
    "over the size limit": (
        sparse_49_mib,
        "huge.txt",
        f"huge.txt is 51,380,224 bytes, over the limit of 50,331,648; {HINT}",
    ),
    "a symlink loop": (
        symlink_loop,
        "loop.txt",
        f"loop.txt: too many levels of symbolic links (a symlink loop?); {HINT}",
    ),
    **{
        f"outside the project ({path})": (None, path, OUTSIDE.format(path))
        for path in ("../shared/data/names.txt", "/tmp/names.txt", "data/../..")
    },
}


@pytest.mark.parametrize("case", REFUSED_PATHS)
def test_a_names_path_that_is_not_a_names_file_in_the_project(project, case):
    make, names, message = REFUSED_PATHS[case]
    if make:
        make(project)
    set_params(project, data__names=names)
    assert error_line(stage(project, "prepare", check=False, timeout=30)) == message
    assert not (project / "data/prepared").exists()


def test_names_path_with_a_nul_byte(project):
    set_params(project, data__names="data/na\0mes.txt")
    r = stage(project, "prepare", check=False)
    assert "Traceback" not in r.stderr and r.returncode == 1
    assert "data.names" in r.stderr or "NUL" in r.stderr


def test_names_file_name_too_long_says_so(project):
    set_params(project, data__names="n" * 300 + ".txt")
    line = error_line(stage(project, "prepare", check=False))
    assert line.endswith(f": file name too long; {HINT}")
