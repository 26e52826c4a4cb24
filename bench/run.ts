/**
 * `npm run bench [-- local|transfer|dir ...]`: runs the benchmarks (all by default), each side by
 * side with its baselines in the same run, printing ratios and writing bench/results/*.json.
 * BENCH_QUICK=1 shrinks sizes for a smoke run.
 */
import { runDirBench } from "./dir.ts"
import { runLocalBench } from "./local.ts"
import { runTransferBench } from "./transfer.ts"

const quick = process.env.BENCH_QUICK === "1"
const suites: Record<string, () => Promise<void>> = {
  local: () => runLocalBench(quick ? { sizeBytes: 128 << 20, reps: 1 } : {}),
  transfer: () => runTransferBench({ quick }),
  dir: () => runDirBench(quick ? { files: 2000, bytes: 4 << 20, reps: 1 } : {}),
}

const wanted = process.argv.slice(2).filter((a) => a !== "--")
for (const name of wanted.length ? wanted : Object.keys(suites)) {
  const suite = suites[name]
  if (!suite) {
    console.error(`unknown bench ${name}; known: ${Object.keys(suites).join(", ")}`)
    process.exit(2)
  }
  await suite()
}
