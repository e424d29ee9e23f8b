"""bigram.select: choose on dev, report test once."""

import json

from bigram.select import as_json, as_table, best, candidates, rank, ranked, varied


def test_select_reports_test_only_for_the_winner():
    def entry(name, dev, test, kind_rev):
        return {
            "rev": kind_rev,
            "name": name,
            "data": {
                "params": {},
                "metrics": {
                    "metrics/evaluate.json": {
                        "data": {"train": {"nll": 1.0}, "dev": {"nll": dev}, "test": {"nll": test}}
                    }
                },
            },
        }

    shown = [
        {
            "rev": "workspace",
            **{k: v for k, v in entry(None, 0.1, 0.1, "workspace").items() if k != "rev"},
        },
        {
            **entry("main", 2.5, 2.0, "a" * 40),
            "experiments": [
                {"revs": [entry("x", 2.4, 2.6, "b" * 40)]},
                {"revs": [entry("y", 2.45, 1.0, "c" * 40)]},
                {"revs": [{"rev": "d" * 40, "name": "failed", "data": None}]},
            ],
        },
    ]
    [chosen] = best(shown)
    # x wins on dev although y has the better test score: test must not decide.
    assert (chosen.name, chosen.kind, chosen.test) == ("x", "experiment", 2.6)
    assert len(list(candidates(shown))) == 3


def test_an_evaluate_json_of_another_shape_is_skipped_not_a_traceback():
    def entry(name, metrics):
        rev = name * 40
        data = {"params": {}, "metrics": {"metrics/evaluate.json": {"data": metrics}}}
        return {"rev": rev, "name": name, "data": data}

    good = {"train": {"nll": 2.4}, "dev": {"nll": 2.5}, "test": {"nll": 2.6}}
    shown = [
        {
            **entry("a", good),
            "experiments": [
                {"revs": [entry("b", {"dev": 2.0, "test": 2.0})]},  # an older flat shape
                {"revs": [entry("c", {"dev": {"nll": "low"}, "test": {"nll": 1}})]},
                {"revs": [entry("d", [1, 2])]},
            ],
        }
    ]
    [chosen] = best(shown)
    assert chosen.name == "a" and len(list(candidates(shown))) == 1


def grid_entry(name, context, reg, smoothing, neural, count):
    """One experiment of the exercise grid: neural and count (dev, test) NLL."""
    return {
        "rev": name.ljust(40, "0"),
        "name": name,
        "data": {
            "params": {
                "params.yaml": {
                    "data": {
                        "model": {"context": context},
                        "train": {"reg": reg, "lr": 50},
                        "compare": {"smoothing": smoothing},
                    }
                }
            },
            "metrics": {
                "metrics/evaluate.json": {
                    "data": {
                        "train": {"nll": 2.0},
                        "dev": {"nll": neural[0]},
                        "test": {"nll": neural[1]},
                    }
                },
                "metrics/compare.json": {
                    "data": {
                        "count": {"train": 2.0, "dev": count[0], "test": count[1]},
                        "neural": {},
                    }
                },
            },
        },
    }


def test_select_by_a_param_gives_the_best_on_dev_of_each_group_for_either_model():
    grid = [
        grid_entry("k1-lo", 1, 0.001, 1, (2.46, 2.47), (2.45, 2.46)),
        grid_entry("k1-hi", 1, 0.1, 0.1, (2.50, 2.40), (2.44, 2.47)),
        grid_entry("k2-lo", 2, 0.001, 1, (2.30, 2.31), (2.24, 2.25)),
        grid_entry("k2-hi", 2, 0.1, 0.1, (2.31, 2.20), (2.22, 2.23)),
        grid_entry("k10", 10, 0.1, 0.1, (2.9, 2.9), (2.9, 2.9)),  # numbers sort as numbers
    ]
    shown = [{**grid[0], "experiments": [{"revs": [e]} for e in grid[1:]]}]
    neural = best(shown, "neural", "model.context")
    assert [(c.params["model.context"], c.name) for c in neural] == [
        (1, "k1-lo"),
        (2, "k2-lo"),
        (10, "k10"),
    ]
    count = best(shown, "count", "model.context")
    assert [(c.name, c.dev, c.test) for c in count[:2]] == [
        ("k1-hi", 2.44, 2.47),
        ("k2-hi", 2.22, 2.23),
    ]
    assert best(shown, "count")[0].name == "k2-hi"
    assert varied(list(candidates(shown))) == [
        "model.context",
        "train.reg",
        "compare.smoothing",
    ]


def shown_with(*revs):
    """`dvc exp show --json` output: a baseline and experiments given as (name, dev, state)."""

    def entry(name, dev, rev):
        nll = {"train": {"nll": 1.0}, "dev": {"nll": dev}, "test": {"nll": 2.0}}
        return {
            "rev": rev,
            "name": name,
            "data": {"params": {}, "metrics": {"metrics/evaluate.json": {"data": nll}}},
        }

    return [
        {
            **entry("main", 2.5, "a" * 40),
            "experiments": [
                {"revs": [entry(name, dev, f"{i:040d}")], "executor": {"state": state}}
                for i, (name, dev, state) in enumerate(revs)
            ],
        }
    ]


def exp_show_prints(monkeypatch, shown):
    """`dvc exp show --json` as select runs it, answering `shown`."""
    import subprocess

    from bigram import select

    done = subprocess.CompletedProcess([], 0, stdout=json.dumps(shown), stderr="")
    monkeypatch.setattr(select.subprocess, "run", lambda *a, **k: done)


def test_unfinished_failed_and_unscored_experiments_are_passed_over_and_said(monkeypatch, capsys):
    from bigram import select

    shown = shown_with(
        ("running", 1.0, "running"),
        ("queued", 1.0, "queued"),
        ("nan", float("nan"), "success"),
        ("ok", 2.4, "success"),
        ("boom", 2.0, "failed"),
    )
    shown[0]["experiments"][2]["revs"][0]["data"]["metrics"]["metrics/evaluate.json"]["data"][
        "dev"
    ]["nll"] = float("nan")
    found, skipped = select.survey(shown)
    assert [c.name for c in found] == ["main", "ok"]
    assert skipped == [
        ("running", "running, not finished"),
        ("queued", "queued, not finished"),
        ("nan", "no finite NLLs in metrics/evaluate.json"),
        ("boom", "failed, not finished"),
    ]
    # the running one's stale numbers (1.0) never win
    assert select.best(shown)[0].name == "ok"
    exp_show_prints(monkeypatch, shown)
    select.select_command(False)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        "passed over 4: running (running, not finished), queued (queued, not "
        "finished), nan (no finite NLLs in metrics/evaluate.json), boom (failed, "
        "not finished)"
    )


def test_an_exact_tie_on_dev_is_said(monkeypatch, capsys):
    from bigram import select

    shown = shown_with(("b-exp", 2.4, "success"), ("a-exp", 2.4, "success"))
    exp_show_prints(monkeypatch, shown)
    select.select_command(False)
    out = capsys.readouterr().out
    assert "a-exp ties on dev NLL with b-exp: chosen as the name that sorts first" in out
    select.select_command(True)
    assert json.loads(capsys.readouterr().out)["tied_on_dev"] == ["b-exp"]


def two_commits():
    """dvc exp show --json -A's shape: two commits, each with an experiment."""

    def entry(name, dev, rev):
        nll = {"train": {"nll": 2.0}, "dev": {"nll": dev}, "test": {"nll": 9.0}}
        params = {"params.yaml": {"data": {"train": {"reg": dev}}}}
        return {
            "rev": rev,
            "name": name,
            "data": {"params": params, "metrics": {"metrics/evaluate.json": {"data": nll}}},
        }

    return [
        {**entry("main", 2.47, "a" * 40), "experiments": [{"revs": [entry("x", 2.25, "b" * 40)]}]},
        {**entry(None, 2.50, "c" * 40), "experiments": [{"revs": [entry("y", 2.30, "d" * 40)]}]},
    ]


def test_every_commits_experiments_are_candidates_and_say_their_commit():
    ranking = rank(two_commits())
    assert [(c.name, c.commit) for c in ranked(ranking)] == [
        ("x", "a" * 40),
        ("y", "c" * 40),
        ("main", "a" * 40),
        ("ccccccc", "c" * 40),
    ]
    assert ranking.winners[0].name == "x"


def test_all_ranks_every_candidate_on_dev_without_their_test_nll():
    ranking = rank(two_commits())
    out = as_json(ranking, everyone=True)
    assert [r["name"] for r in out["ranked"]] == ["x", "y", "main", "ccccccc"]
    assert all("test_nll" not in r for r in out["ranked"])
    assert out["test_nll"] == 9.0  # the chosen one's, as without --all
    table = as_table(ranking)
    assert table[0].split() == ["rank", "name", "commit", "train.reg", "train", "NLL", "dev", "NLL"]
    assert [row.split()[:3] for row in table[1:]] == [
        ["1", "x", "aaaaaaa"],
        ["2", "y", "ccccccc"],
        ["3", "main", "aaaaaaa"],
        ["4", "ccccccc", "ccccccc"],
    ]
    assert not any("9.0000" in row for row in table)
