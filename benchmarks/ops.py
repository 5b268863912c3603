"""Op throughput benchmark; see cutmix/bench/ops.py. Usage: python benchmarks/ops.py [--json benchmarks/ops-cpu.json]"""

from cutmix.bench.ops import main

if __name__ == "__main__":
    raise SystemExit(main())
