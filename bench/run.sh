#!/usr/bin/env bash
# Runs the benchmarks and appends their figures to docs/benchmarks.md.
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG to override) and installs wrk with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python bench/http_bench.py --duration "${BENCH_SECONDS:-10}" --write docs/benchmarks.md
