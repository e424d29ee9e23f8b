"""bigram.select: choose on dev, report test once."""

from bigram.select import best


def test_select_reports_test_only_for_the_winner():
    def entry(name, dev, test, kind_rev):
        return {
            "rev": kind_rev,
            "name": name,
            "data": {
                "params": {},
                "metrics": {
                    "metrics/evaluate.json": {"data": {"dev": {"nll": dev}, "test": {"nll": test}}}
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
    (name, rev, kind, _, metrics), considered = best(shown)
    # x wins on dev although y has the better test score: test must not decide.
    assert (name, kind, considered, metrics["test"]["nll"]) == ("x", "experiment", 3, 2.6)


def test_an_evaluate_json_of_another_shape_is_skipped_not_a_traceback():
    def entry(name, metrics):
        rev = name * 40
        data = {"params": {}, "metrics": {"metrics/evaluate.json": {"data": metrics}}}
        return {"rev": rev, "name": name, "data": data}

    good = {"dev": {"nll": 2.5}, "test": {"nll": 2.6}}
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
    (name, *_), considered = best(shown)
    assert (name, considered) == ("a", 1)
