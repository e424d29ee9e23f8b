"""The six DVC stages, one module each; the work is in the bigram library."""
