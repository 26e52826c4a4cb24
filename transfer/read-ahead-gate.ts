/**
 * Bounds a holder's reads ahead (reads of a window beyond what a transfer already has
 * buffered) in libuv's thread pool: at most `limit` run at once, and the transfers that
 * wanted one wait in arrival order. Six bulk transfers each reading ahead would otherwise
 * fill the pool's four threads, and a small transfer's open and first read, which do not go
 * through the gate, would queue behind them.
 */
export class ReadAheadGate<T> {
  #running = 0
  readonly #waiting: T[] = []

  constructor(private readonly limit: number) {}

  /** Reads ahead running now. */
  get running(): number {
    return this.#running
  }

  /** True when a read ahead for `item` may start now (it counts until `done`); else `item` waits (once). */
  tryStart(item: T): boolean {
    if (this.#running < this.limit) {
      this.#running++
      return true
    }
    if (!this.#waiting.includes(item)) this.#waiting.push(item)
    return false
  }

  /** A read ahead finished. */
  done(): void {
    this.#running--
  }

  /** The next waiting item, while there is room for it to start; undefined otherwise. */
  next(): T | undefined {
    return this.#running < this.limit ? this.#waiting.shift() : undefined
  }
}
