"""bigram.names: names files into a vocabulary and bigram pairs."""

import numpy as np

from bigram.names import encode, index_dtype
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES


def test_encode_matches_the_notebooks_vocabulary_and_pairs():
    stoi, xs, ys = notebook.build(NOTEBOOK_NAMES)
    vocab, pairs = encode(NOTEBOOK_NAMES)
    assert {c: i for i, c in enumerate(vocab)} == stoi
    assert pairs.dtype == np.uint8
    assert pairs[0].tolist() == xs.tolist() and pairs[1].tolist() == ys.tolist()


def test_encode_by_hand():
    vocab, pairs = encode(["ab", "b"])
    assert vocab == [".", "a", "b"]
    # .ab. .b.  ->  (.,a) (a,b) (b,.) (.,b) (b,.)
    assert pairs.T.tolist() == [[0, 1], [1, 2], [2, 0], [0, 2], [2, 0]]


def test_boundary_is_index_zero_even_when_symbols_sort_before_it():
    vocab, pairs = encode(["a-b", "c d"])  # '-' and ' ' sort before '.'
    assert vocab == [".", " ", "-", "a", "b", "c", "d"]
    assert pairs.shape[1] == 4 + 4


def test_vocabulary_is_data_driven_and_index_width_follows_it():
    names = ["Zoë", "anaïs"] + [chr(0x4E00 + i) for i in range(300)]
    vocab, pairs = encode(names)
    assert len(vocab) == 1 + len(set("".join(names)))
    assert pairs.dtype == np.uint16
    assert index_dtype(256) == np.uint8 and index_dtype(257) == np.uint16


# --- names files that are not what they seem: parsed in-process ----------------------

import os  # noqa: E402
import unicodedata  # noqa: E402

import pytest  # noqa: E402

from bigram import artifacts, params  # noqa: E402
from bigram.console import PipelineError  # noqa: E402
from bigram.names import parse_names  # noqa: E402

SEEMING = {  # bytes -> the names, as independently written out
    "NFC and NFD spellings are one name": (
        "Zoé\nZoe\u0301\n".encode(),
        [unicodedata.normalize("NFC", "Zoé")] * 2,
    ),
    "a BOM at the start of every concatenated file": (
        b"\xef\xbb\xbfemma\n\xef\xbb\xbfava\n",
        ["emma", "ava"],
    ),
    "a BOM after leading spaces": ("  \ufeffemma\n".encode(), ["emma"]),
}


@pytest.mark.parametrize("case", SEEMING)
def test_names_that_only_look_different_are_the_same(case):
    data, names = SEEMING[case]
    assert parse_names(data, "n.txt") == names


NOT_NAMES = {  # bytes -> the one line said
    "a CSV with a header": (
        b"name,sex,count\nOlivia,F,18451\n",
        "n.txt line 1: 'name,sex,count' contains ','; put one plain name per line (is this a "
        "CSV such as name,sex,count? keep its first column: `cut -d, -f1`)",
    ),
    "a CSV without one": (b"emma\nOlivia,F,18451\n", "n.txt line 2: 'Olivia,F,18451' contains ','"),
    "a line separator inside a name": (
        "an\u2028na\n".encode(),
        "n.txt line 1: invisible character U+2028 (LINE SEPARATOR) inside a name; remove it",
    ),
    "a paragraph separator": ("a\n\nb\u2029c".encode(), "n.txt line 3: invisible character U+2029"),
    "a BOM inside a name": (
        "emma\nav\ufeffa\n".encode(),
        "n.txt line 2: invisible character U+FEFF (ZERO WIDTH NO-BREAK SPACE) inside a name",
    ),
}


@pytest.mark.parametrize("case", NOT_NAMES)
def test_files_that_are_not_names_files_are_refused_in_one_line(case):
    data, said = NOT_NAMES[case]
    with pytest.raises(PipelineError) as e:
        parse_names(data, "n.txt")
    assert str(e.value).startswith(said) and "\n" not in str(e.value)


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.txt"])
def test_a_names_file_linking_outside_the_project_is_not_read(tmp_path, monkeypatch, target):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret\n")
    os.symlink(target if target.startswith("/") else "../" + target, project / "data/names.txt")
    monkeypatch.chdir(project)
    with pytest.raises(PipelineError) as e:
        artifacts.read_names_file("data/names.txt")
    assert str(e.value) == (
        "data/names.txt is a symbolic link to a file outside the project, which the pipeline "
        "does not read: copy the file into data/ and track it with `dvc add` "
        "(docs/your-own-names.md)"
    )
    os.symlink("names.txt", project / "data/alias.txt")  # inside the project: fine
    (project / "data/names.txt").unlink()
    (project / "data/names.txt").write_text("emma\n")
    assert artifacts.read_names_file("data/alias.txt") == b"emma\n"


def test_a_backslash_path_is_named_as_such():
    raw = params.defaults()
    raw["data"]["names"] = "data\\names.txt"
    with pytest.raises(PipelineError) as e:
        params.validate(raw)
    assert str(e.value) == (
        "params.yaml: data.names = 'data\\\\names.txt': `\\` is not a path separator here; "
        "write the path with `/`"
    )
