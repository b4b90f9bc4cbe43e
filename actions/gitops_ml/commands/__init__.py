"""One module per CLI verb: read inputs, call the core, do the I/O at the edges, report."""
