"""The neural bigram pipeline as a library: the maths, artifact I/O, params and lineage."""
