"""Local stand-ins of the outside systems, for `syncd demo`, the tests and the benchmarks."""
