import fc from "fast-check"
import { describe, it } from "vitest"
import { checkBytes, checkValid } from "./check.ts"
import type { AnyTarget } from "./targets.ts"

/**
 * The bounded, in-suite form of the fuzz run: each target's properties for a few hundred
 * cases per suite run. The seed is FUZZ_SEED when set (to replay a failure), else random, so
 * every CI run covers new cases; fast-check's failure report names the seed and the path.
 */
export const FUZZ_SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 0x7fff_ffff)
/** Cases per property (FUZZ_RUNS overrides, e.g. for a longer local run). */
export const FUZZ_RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 600

export function fuzzParams(runs = FUZZ_RUNS): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns: runs }
}

/** Two tests per target: the round trip on honest values, and safety plus canonical form on untrusted bytes. */
export function describeTargets(title: string, targets: readonly AnyTarget[], runs = FUZZ_RUNS): void {
  describe(`${title} (fuzz seed ${FUZZ_SEED}: FUZZ_SEED=${FUZZ_SEED} replays)`, () => {
    for (const t of targets) {
      it(`${t.name}: decode(encode(v)) gives back every honest value v`, () => {
        fc.assert(
          fc.property(t.valid, (v) => {
            checkValid(t, v)
          }),
          fuzzParams(runs),
        )
      })
      it(`${t.name}: untrusted bytes get a typed refusal or decode to a value that re-encodes to them`, () => {
        fc.assert(
          fc.property(t.inputs, (b) => {
            checkBytes(t, b)
          }),
          fuzzParams(runs * 2),
        )
      })
    }
  })
}
