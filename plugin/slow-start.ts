/**
 * Opens a fetch's concurrency gradually, like TCP's slow start: `initial` chunks start at
 * once and every arrival opens one more slot besides freeing its own, so a fetch has at most
 * `initial + arrived` chunks in flight until its concurrency bound takes over (six after four
 * arrivals). Readers that start one blob together otherwise all ask its producer for their
 * first six chunks at once, before any of them can advertise a chunk to the others
 * (8 readers: the producer served 2.16 copies with all six at once). A lone reader loses a
 * few milliseconds at the start.
 */
export class SlowStart {
  #arrived = 0
  readonly #waiting: Array<{ need: number; go: () => void }> = []

  constructor(
    /** Slots that start at once. */
    private readonly initial = 2,
  ) {}

  /** Resolves when task `k` (0-based, in start order) may begin, or at once when `signal` aborts. */
  ready(k: number, signal?: AbortSignal): Promise<void> {
    // started ≤ in flight + finished ≤ (initial + arrived) + arrived
    const need = k < this.initial ? 0 : Math.ceil((k - this.initial + 1) / 2)
    if (this.#arrived >= need || signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const go = () => {
        signal?.removeEventListener("abort", go)
        resolve()
      }
      signal?.addEventListener("abort", go, { once: true })
      this.#waiting.push({ need, go })
    })
  }

  /** One more chunk arrived. */
  arrived(): void {
    this.#arrived++
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i]!
      if (this.#arrived >= w.need) {
        this.#waiting.splice(i, 1)
        w.go()
      }
    }
  }
}
