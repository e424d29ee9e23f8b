"""bigram.pipeline's table of each stage's reads and writes is dvc.yaml's."""

import pytest
import yaml

from bigram import lineage, pipeline
from tests.conftest import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def names(entries):
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def test_the_table_has_dvc_yamls_stages_in_order():
    assert list(pipeline.STAGES) == list(DVC_YAML)


@pytest.mark.parametrize("stage", list(DVC_YAML))
def test_dvc_yaml_declares_what_the_table_says(stage):
    io, entry = pipeline.STAGES[stage], DVC_YAML[stage]
    data_deps = [d for d in entry["deps"] if not d.startswith(("bigram/", "stages/"))]
    assert tuple(data_deps) == io.reads
    assert tuple(p for p in entry.get("params", []) if isinstance(p, str)) == io.params
    assert tuple(names(entry.get("outs")) + names(entry.get("metrics"))) == io.writes


def test_lineage_records_name_the_tables_data_inputs_and_outputs():
    assert lineage.reads_and_writes("prepare", "data/x.txt") == (
        ["data/x.txt"],
        ["data/prepared/vocab.json", "data/prepared/pairs.npy"],
    )
    assert lineage.reads_and_writes("split", "data/x.txt") == (
        ["data/prepared/vocab.json", "data/prepared/pairs.npy"],
        ["data/split/split.npy", "data/split/counts.npy"],
    )
    assert lineage.reads_and_writes("train", "data/x.txt") == (
        ["data/prepared/vocab.json", "data/split/counts.npy"],
        [],
    )
    assert lineage.STAGE_SECTIONS == {
        "prepare": ("data",),
        "split": ("split", "model"),
        "train": ("train",),
    }


def test_the_documented_stage_table_names_every_output():
    rows = {
        cells[1].strip(): "|".join(cells[4:6])
        for doc in sorted((ROOT / "docs").glob("*.md"))
        for line in doc.read_text().splitlines()
        if len(cells := line.split("|")) > 6 and cells[1].strip() in pipeline.STAGES
    }
    assert list(rows) == list(pipeline.STAGES)
    for stage, io in pipeline.STAGES.items():
        for path in io.writes:
            assert f"`{path}" in rows[stage], (stage, path)
