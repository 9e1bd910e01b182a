"""kubectl operations: grammar, parser, classifier, the write gate, the runner; `kai run` and `kai debug`."""
