#!/usr/bin/env bash
# Benchmarks, run by `make bench` (placeholder; results go to tests/bench/out/).
echo "not yet"
exit 0
