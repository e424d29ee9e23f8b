"""The six DVC stages, one module each; the maths is in the bigram library.

prepare, split and train each have a pure derive(): from the bytes the stage read to the
bytes it writes. main() reads, calls it and writes; `bigram lineage --verify` calls the
same derive() in memory to re-derive a checkpoint's whole chain."""

import os

from bigram.console import install_hook

install_hook()  # before the stage imports numpy: running out of memory there is one line

# The stages use no BLAS (their maths is elementwise, portable numpy), so OpenBLAS's
# thread pool would only burn CPU while numpy is imported: half of a stage's start-up.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
