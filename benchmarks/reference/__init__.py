"""Reference implementations that petaseg's compiled code replaced, kept to check it against
(tests) and to measure it against (benchmarks): same results, slower."""

__all__ = ["agglomeration", "contingency"]
