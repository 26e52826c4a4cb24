import * as Effect from "effect/Effect"
import { AbortedError } from "../storage/format/errors.ts"

/**
 * Runs `fn` over `items` with at most `concurrency` in flight (Effect's bounded `forEach`).
 * The first failure interrupts the rest (their signals fire) and is rethrown as is; the
 * caller's abort rejects with AbortedError. Each `fn` gets a signal to pass down.
 */
export async function forEachBounded<A>(
  items: Iterable<A>,
  concurrency: number,
  fn: (item: A, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
  const program = Effect.forEach(items, (item) => Effect.tryPromise({ try: (s) => fn(item, s), catch: (e) => e }), {
    concurrency,
    discard: true,
  })
  try {
    await Effect.runPromise(program, signal ? { signal } : undefined)
  } catch (err) {
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
    throw err
  }
}
