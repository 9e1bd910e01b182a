"""The Layer-1 evaluator: rules as data, a compiled engine, cross-object checks."""
