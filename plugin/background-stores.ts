import { AbortedError } from "../storage/format/errors.ts"

/**
 * Chunk writes that go on after their bytes were handed on (to the next fetch slot, or to
 * a reader), so slow storage does not idle the network. At most `max` are pending: a
 * fetch waits for `room()` first, so memory stays flat when the disk is slower than the
 * network. The first failure is kept and reported once through `onError` (the caller stops
 * its fetches); `settle` waits for all.
 */
export class BackgroundStores {
  readonly #pending = new Set<Promise<void>>()
  readonly #waiting: Array<() => void> = []
  #error: { err: unknown } | undefined

  constructor(
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Resolves once fewer than `max` writes are pending. */
  async room(signal?: AbortSignal): Promise<void> {
    while (this.#pending.size >= this.max) {
      if (signal?.aborted) throw new AbortedError({ cause: signal.reason })
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal?.removeEventListener("abort", onAbort)
          resolve()
        }
        const onAbort = () => {
          const i = this.#waiting.indexOf(wake)
          if (i >= 0) this.#waiting.splice(i, 1)
          resolve()
        }
        signal?.addEventListener("abort", onAbort, { once: true })
        this.#waiting.push(wake)
      })
    }
  }

  /** Tracks `work`; `after` runs once it settled either way (release its memory there). */
  add(work: Promise<void>, after: () => void): void {
    const p: Promise<void> = work
      .catch((err: unknown) => {
        if (this.#error !== undefined) return
        this.#error = { err }
        this.onError(err)
      })
      .finally(() => {
        this.#pending.delete(p)
        after()
        this.#waiting.shift()?.()
      })
    this.#pending.add(p)
  }

  /** Waits for every tracked write. */
  async settle(): Promise<void> {
    await Promise.all(this.#pending)
  }

  /** Throws the first failure, if any. */
  throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error.err
  }
}
