import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/nats-core"
import { inject } from "vitest"
import type { HashBackend } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import type { ChunkReader, ChunkSource } from "../../transfer/sender.ts"

export const natsUrl = (): string => inject("natsUrl")
export const connectNats = (): Promise<NatsConnection> => connect({ servers: natsUrl() })
export const uniquePrefix = (): string => `t${globalThis.crypto.randomUUID().replaceAll("-", "")}`

/** Subscriptions a connection currently holds (nats.js internals; for leak checks). */
export const subscriptionCount = (nc: NatsConnection): number =>
  (nc as unknown as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size()

/** Status listeners a connection holds (nats.js internals; each `status()` iterator adds one). */
export const statusListenerCount = (nc: NatsConnection): number =>
  (nc as unknown as { protocol: { listeners: unknown[] } }).protocol.listeners.length

/** Active timers and intervals of this process (for leak checks). */
export const timerCount = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length

export interface MemorySourceOptions {
  /** Transform the bytes a reader hands out (a "corrupt" holder flips a byte). */
  corrupt?: boolean
  /** Report this length instead of the real one (a "liar"). */
  claimLength?: number
  /** Reads at or beyond this offset wait until `release()` is called. */
  gateAt?: number
}

/** An in-memory ChunkSource (hex → bytes) that counts open readers. */
export class MemorySource implements ChunkSource {
  readonly chunks = new Map<string, Uint8Array>()
  openReaders = 0
  opened = 0
  #gate: Promise<void>
  #release!: () => void

  constructor(readonly options: MemorySourceOptions = {}) {
    this.#gate = new Promise((resolve) => (this.#release = resolve))
  }

  add(hash: string, bytes: Uint8Array): this {
    this.chunks.set(hash, bytes)
    return this
  }

  release(): void {
    this.#release()
  }

  async open(hashHex: string): Promise<ChunkReader | undefined> {
    const bytes = this.chunks.get(hashHex)
    if (bytes === undefined) return undefined
    this.openReaders++
    this.opened++
    const o = this.options
    let closed = false
    return {
      length: o.claimLength ?? bytes.length,
      read: async (offset, length) => {
        if (o.gateAt !== undefined && offset >= o.gateAt) await this.#gate
        const out = new Uint8Array(length)
        out.set(bytes.subarray(offset, Math.min(bytes.length, offset + length)))
        if (o.corrupt && offset === 0 && length > 0) out[0]! ^= 0xff
        return out
      },
      readInto: async (offset, targets) => {
        if (o.gateAt !== undefined && offset >= o.gateAt) await this.#gate
        // claimLength may exceed the real bytes: a lying holder serves zeros past them
        let at = offset
        for (const t of targets) {
          t.fill(0).set(bytes.subarray(at, Math.min(bytes.length, at + t.length)))
          at += t.length
        }
        if (o.corrupt && offset === 0 && targets[0] !== undefined && targets[0].length > 0) targets[0][0]! ^= 0xff
        return at - offset
      },
      close: async () => {
        if (!closed) this.openReaders--
        closed = true
      },
    }
  }
}

/** A chunk of `size` pseudo-random bytes and its hex hash. */
export function chunkOf(size: number, seed: number, hb: HashBackend): { bytes: Uint8Array; hash: string } {
  const bytes = new Uint8Array(size)
  let x = seed | 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return { bytes, hash: toHex(hb.hash(bytes)) }
}

/** Byte equality without vitest's per-element deep diff (which cannot cope with 16 MiB). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}
