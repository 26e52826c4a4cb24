/**
 * Chunk writes that go on after their bytes were handed on (to the next fetch slot, or to
 * a reader), so slow storage does not idle the network. The first failure is kept and
 * reported once through `onError` (the caller stops its fetches); `settle` waits for all.
 */
export class BackgroundStores {
  readonly #pending = new Set<Promise<void>>()
  #error: { err: unknown } | undefined

  constructor(private readonly onError: (err: unknown) => void) {}

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
