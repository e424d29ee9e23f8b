"""`python -m bigram` is the `bigram` command."""

from bigram.cli import main

main()
