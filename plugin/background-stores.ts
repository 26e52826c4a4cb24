import { ByteBudget } from "./byte-budget.ts"

/**
 * Chunk writes that go on after their bytes were handed on (to the next fetch slot, or to
 * a reader), so slow storage does not idle the network. At most `max` run at once: a fetch
 * whose bytes arrived reserves a write slot (first come first served) before it lets go of
 * them, so when the disk is slower than the network the fetches wait and memory stays
 * flat. The first failure is kept and reported once through `onError` (the caller stops its
 * fetches); `settle` waits for all.
 */
export class BackgroundStores {
  readonly #pending = new Set<Promise<void>>()
  readonly #slots: ByteBudget
  #error: { err: unknown } | undefined

  constructor(
    max: number,
    private readonly onError: (err: unknown) => void,
  ) {
    this.#slots = new ByteBudget(max)
  }

  /** Takes a write slot (waits while `max` are taken); the `add` that uses it gives it back. */
  reserve(signal?: AbortSignal): Promise<void> {
    return this.#slots.acquire(1, signal)
  }

  /** Tracks `work` in a reserved slot; `after` runs once it settled either way (release its memory there). */
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
        this.#slots.release(1)
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
