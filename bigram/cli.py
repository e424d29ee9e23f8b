"""The `bigram` command: the project's tools as subcommands.

    bigram lineage [--json] [--verify [--signature ENVELOPE --key PUB] | --provenance [--sign KEY]]
                   [--rev REV] CHECKPOINT
    bigram select [--json] [--model neural|count] [--by PARAM] [--all] [-A | --rev REV]
    bigram check [--json] [--rev REV]
    bigram sweep -S KEY=V1,V2 ... [--jobs N]

The DVC stages are not here: `dvc repro` runs them (stages/).
"""

import argparse
import os
import sys
from pathlib import Path

from bigram.console import install_hook, run


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bigram", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lineage = sub.add_parser(
        "lineage",
        help="show or verify where a checkpoint came from",
        description="Show a checkpoint's lineage, or verify it against the "
        "project (exit 1 with one line per disagreement).",
    )
    lineage.add_argument("checkpoint", help="a checkpoint file, e.g. models/model.safetensors")
    how = lineage.add_mutually_exclusive_group()
    how.add_argument("--verify", action="store_true", help="recompute and compare everything")
    how.add_argument(
        "--provenance",
        action="store_true",
        help="print the lineage as an in-toto Statement v1 with a SLSA Provenance v1 "
        "predicate (JSON, so --json changes nothing)",
    )
    lineage.add_argument("--json", action="store_true", help="machine-readable output")
    lineage.add_argument(
        "--rev", help="audit the checkpoint as it was at this git revision or DVC experiment"
    )
    lineage.add_argument(
        "--sign",
        metavar="KEY",
        help="with --provenance: print the statement in a DSSE envelope signed with this "
        "ed25519 private key (PEM; `openssl genpkey -algorithm ed25519 -out bigram.key`)",
    )
    lineage.add_argument(
        "--signature",
        metavar="ENVELOPE",
        help="with --verify and --key: check this DSSE envelope's signature and that its "
        "subject is the checkpoint, then verify the lineage",
    )
    lineage.add_argument(
        "--key", metavar="PUB", help="the ed25519 public key (PEM) --signature is checked with"
    )
    select = sub.add_parser(
        "select",
        help="the experiment with the lowest dev NLL, and its test NLL",
        description="Choose on dev, report test once: name the commit or "
        "experiment with the lowest dev NLL (for each value of --by).",
    )
    select.add_argument("--json", action="store_true", help="machine-readable output")
    select.add_argument(
        "--model",
        choices=("neural", "count"),
        default="neural",
        help="rank the neural model (metrics/evaluate.json, the default) or the count-based "
        "one (metrics/compare.json)",
    )
    select.add_argument(
        "--all",
        dest="everyone",
        action="store_true",
        help="also rank every candidate on dev (a table, or 'ranked' in the JSON), without "
        "their test NLL",
    )
    where = select.add_mutually_exclusive_group()
    where.add_argument(
        "-A",
        "--all-commits",
        action="store_true",
        help="the experiments of every commit, not only HEAD's (as `dvc exp show -A`)",
    )
    where.add_argument(
        "--rev",
        dest="revs",
        action="append",
        metavar="REV",
        help="the experiments of this commit (repeat for several; as `dvc exp show --rev`)",
    )
    select.add_argument(
        "--by",
        metavar="PARAM",
        help="the best for each value of this param, e.g. model.context",
    )
    check = sub.add_parser(
        "check",
        help="re-run every stage of dvc.lock in a scratch copy and compare its outputs",
        description="Re-run every stage dvc.lock records in a scratch copy (the workspace is "
        "not written) and say for each output: identical, differs (where), or not checked "
        "(why). Exit 0, 1 or 2 as `bigram lineage --verify`.",
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument(
        "--rev", help="check dvc.lock as it is at this git revision or DVC experiment"
    )
    sweep = sub.add_parser(
        "sweep",
        help="queue a grid of experiments and run it on every core",
        description="Queue every combination of the -S values as DVC experiments and run "
        "them on DVC's queue with N workers, never two at once that would run the same "
        "stage (DVC's run-cache race): stages they share run once and the rest take them "
        "from the run cache. Exit 1 if an experiment failed, with why in one line.",
    )
    sweep.add_argument(
        "-S",
        "--set-param",
        dest="sets",
        action="append",
        required=True,
        metavar="KEY=V1,V2",
        help="a params.yaml key and its values, as `dvc exp run -S`; repeat for a grid",
    )
    sweep.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="DVC queue workers (default: one per core this process may use)",
    )
    return top


def project_root() -> Path | None:
    """The nearest directory at or above this one that holds dvc.yaml."""
    here = Path.cwd()
    return next((d for d in (here, *here.parents) if (d / "dvc.yaml").is_file()), None)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `bigram` console command and of `python -m bigram`."""
    install_hook()
    top = parser()
    args = top.parse_args(argv)
    if args.command == "lineage":
        if args.sign and not args.provenance:
            top.error("--sign signs the provenance: give it with --provenance")
        if (args.signature or args.key) and not (args.signature and args.key and args.verify):
            top.error("--signature and --key go together, with --verify")
        # Paths the user gave, before the tools move to the project's root.
        for name in ("sign", "signature", "key"):
            if getattr(args, name):
                setattr(args, name, os.path.abspath(getattr(args, name)))

    def dispatch() -> None:
        # From anywhere inside the project, as git and DVC work: a path given relative to
        # here is made relative to the project's root, where the tools then run.
        root = project_root()
        if root is not None and root != Path.cwd():
            if args.command == "lineage" and not os.path.isabs(args.checkpoint):
                args.checkpoint = os.path.relpath(os.path.abspath(args.checkpoint), root)
            os.chdir(root)
        # Imported here: `bigram select` must not pay for the audit's imports.
        if args.command == "lineage":
            from bigram.audit import lineage_command

            code = lineage_command(
                args.checkpoint,
                args.verify,
                args.json,
                args.rev,
                args.provenance,
                sign=args.sign,
                signature=(args.signature, args.key) if args.signature else None,
            )
        elif args.command == "check":
            from bigram.check import check_command

            code = check_command(args.rev, args.json)
        elif args.command == "sweep":
            from bigram.sweep import default_jobs, sweep_command

            code = sweep_command(args.sets, args.jobs or default_jobs())
        else:
            from bigram.select import select_command

            code = select_command(
                args.json, args.model, args.by, args.everyone, args.all_commits, args.revs
            )
        if code:
            sys.exit(code)

    run(dispatch)
