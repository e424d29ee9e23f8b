"""Bad input ends in one line naming the file or key, a non-zero exit, no traceback
and no half-written output."""
import pytest

from tests.conftest import set_params, stage


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("content, fragments", [
    (b"", ["has no names"]),
    (b"emma\n\xc3\x28ava\n", ["line 2", "not UTF-8"]),
    (b"emma\nj.r.\n", ["line 2", "'.'"]),
])
def test_bad_names_file_fails_prepare_cleanly(project, content, fragments):
    (project / "data/names.txt").write_bytes(content)
    assert_one_line_error(stage(project, "prepare", check=False), "data/names.txt", *fragments)
    assert not (project / "data/prepared").exists()
    assert not (project / "metrics").exists()


def test_missing_names_file_and_directory(project):
    set_params(project, data__names="nope.txt")
    assert_one_line_error(stage(project, "prepare", check=False), "nope.txt: no such file")
    set_params(project, data__names="data")
    assert_one_line_error(stage(project, "prepare", check=False), "data is a directory")


def test_bad_param_fails_before_any_work(project):
    set_params(project, train__lr="fast")
    assert_one_line_error(stage(project, "prepare", check=False), "train.lr = 'fast'")
    assert not (project / "data/prepared").exists()


def test_divergence_writes_no_checkpoint(project):
    stage(project, "prepare")
    stage(project, "split")
    set_params(project, train__lr=1e6)
    assert_one_line_error(stage(project, "train", check=False), "diverged at step", "train.lr")
    assert not (project / "models/model.safetensors").exists()


def test_a_pickle_renamed_as_checkpoint_is_refused_and_never_runs(project, tmp_path):
    import pickle
    for name in ("prepare", "split"):
        stage(project, name)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (project / "models").mkdir()
    (project / "models/model.safetensors").write_bytes(pickle.dumps(Payload()))
    assert_one_line_error(stage(project, "evaluate", check=False), "models/model.safetensors",
                          "not a checkpoint")
    assert not marker.exists()
