"""The six DVC stages, one module each; the work is in the bigram library."""

import os

# The stages use no BLAS (their maths is elementwise, portable numpy), so OpenBLAS's
# thread pool would only burn CPU while numpy is imported: half of a stage's start-up.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
