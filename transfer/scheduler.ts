/**
 * Deficit round robin by bytes (Shreedhar & Varghese), pure and synchronous. The holder
 * runs ONE of these over all its active transfers: each round every flow that can send
 * earns `quantum` bytes of allowance, so a 16 MiB transfer gets the same share per round
 * as a 1 KiB one and never starves it. A flow that cannot send (no credit, source still
 * reading) banks nothing: its deficit resets, as in the classic algorithm's empty queue.
 */
export class DeficitRoundRobin<F> {
  readonly #quantum: number
  readonly #deficit = new Map<F, number>()
  #order: F[] = []

  /** `quantum` must be at least the largest unit `serve` sends, so every round progresses. */
  constructor(quantum: number) {
    if (!(quantum > 0)) throw new RangeError("quantum must be positive")
    this.#quantum = quantum
  }

  get size(): number {
    return this.#order.length
  }

  has(flow: F): boolean {
    return this.#deficit.has(flow)
  }

  /** Adds a flow at the end of the rotation (no-op when present). */
  add(flow: F): void {
    if (this.#deficit.has(flow)) return
    this.#deficit.set(flow, 0)
    this.#order.push(flow)
  }

  /** Removes a flow; safe during `round`. */
  remove(flow: F): void {
    if (!this.#deficit.delete(flow)) return
    const i = this.#order.indexOf(flow)
    if (i >= 0) this.#order.splice(i, 1)
  }

  /** The banked deficit of a flow (for tests and introspection). */
  deficitOf(flow: F): number {
    return this.#deficit.get(flow) ?? 0
  }

  /**
   * One round over the flows present when it starts. For each flow that `ready` says can
   * send, calls `serve(flow, allowance)`, which sends whole units while they fit in the
   * allowance and returns the bytes it sent. Returns the bytes sent in the round.
   */
  round(ready: (flow: F) => boolean, serve: (flow: F, allowance: number) => number): number {
    let total = 0
    const flows = this.#order.slice()
    for (let i = 0; i < flows.length; i++) {
      const flow = flows[i]!
      const banked = this.#deficit.get(flow)
      if (banked === undefined) continue // removed earlier in this round
      if (!ready(flow)) {
        this.#deficit.set(flow, 0)
        continue
      }
      const allowance = banked + this.#quantum
      const sent = serve(flow, allowance)
      total += sent
      // serve may have removed (finished) the flow; an idle flow banks nothing
      if (this.#deficit.has(flow)) this.#deficit.set(flow, ready(flow) ? allowance - sent : 0)
    }
    return total
  }
}
