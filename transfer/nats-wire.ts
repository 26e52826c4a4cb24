/**
 * The holder's window into nats.js internals, in one place. nats.js offers no way to write
 * preformatted protocol bytes, to learn when a publish has left its queue, or to see socket
 * backpressure; the holder needs all three to send slabs of frames without a copy per frame.
 * Every use checks that the internals look as expected and degrades to the public API (or to
 * no reuse) when they do not, so a nats.js change costs speed, never correctness. A test
 * asserts the fast path is taken with the nats.js we ship (test/integration/transfer-wire).
 */
import type { NatsConnection } from "@nats-io/nats-core"
import { FRAME_MAX_BYTES } from "./constants.ts"

interface Socket {
  readonly destroyed?: boolean
  readonly writableLength?: number
  readonly writableNeedDrain?: boolean
  write?(bytes: Uint8Array, done: (err?: Error | null) => void): boolean
  once?(e: "drain", f: () => void): void
  off?(e: "drain", f: () => void): void
}

interface Protocol {
  connected?: boolean
  infoReceived?: boolean
  info?: { max_payload?: number }
  outbound?: { size?: () => number }
  flushPending?: () => void
  transport?: { socket?: Socket }
  outMsgs?: number
  outBytes?: number
}

function protocolOf(nc: NatsConnection): Protocol | undefined {
  return (nc as unknown as { protocol?: Protocol }).protocol
}

/**
 * True only when nats.js's outbound queue is provably empty (so it holds no views of our
 * buffers); false when its internals are not what we expect.
 */
export function outboundEmpty(nc: NatsConnection): boolean {
  const outbound = protocolOf(nc)?.outbound
  return typeof outbound?.size === "function" && outbound.size() === 0
}

/** Bytes queued in the connection's socket and not yet handed to the kernel (0 when unknown). */
export function socketQueuedBytes(nc: NatsConnection): number {
  return protocolOf(nc)?.transport?.socket?.writableLength ?? 0
}

/**
 * Resolves once the socket's queue is at or below `highWater` bytes, `stop()` is true, or the
 * socket or connection is gone (each wait for a 'drain' is at most 50 ms: it may never come).
 * nats.js drops `socket.write()`'s backpressure signal, so the holder watches the socket.
 */
export async function socketDrained(nc: NatsConnection, highWater: number, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const socket = protocolOf(nc)?.transport?.socket
    // a destroyed socket keeps its writableLength: it will never drain
    if (socket === undefined || socket.destroyed === true || nc.isClosed() || (socket.writableLength ?? 0) <= highWater) return
    await new Promise<void>((resolve) => {
      if (socket.writableNeedDrain !== true || typeof socket.once !== "function") {
        setTimeout(resolve, 1)
        return
      }
      const done = () => {
        clearTimeout(timer)
        socket.off?.("drain", done)
        resolve()
      }
      const timer = setTimeout(done, 50)
      socket.once("drain", done)
    })
  }
}

/**
 * Writes `records` (complete `PUB` records, see wire-slab.ts) to the connection's socket after
 * everything nats.js has queued, so they keep their order with the connection's publishes.
 * `written` is called once the socket no longer needs the bytes (sent, or the socket died).
 * Returns false, having written nothing, when the connection is not in a state to take raw
 * bytes (closed, draining, reconnecting, a server whose max_payload is below one frame,
 * internals not as expected); the caller then publishes the frames one by one.
 */
export function writeRecords(nc: NatsConnection, records: Uint8Array, messages: number, payloadBytes: number, written: () => void): boolean {
  const p = protocolOf(nc)
  const socket = p?.transport?.socket
  if (p === undefined || socket === undefined || typeof socket.write !== "function" || typeof p.flushPending !== "function") return false
  if (nc.isClosed() || nc.isDraining() || p.connected !== true || p.infoReceived !== true || socket.destroyed === true) return false
  if ((p.info?.max_payload ?? 0) < FRAME_MAX_BYTES) return false
  p.flushPending()
  if (!outboundEmpty(nc)) return false
  socket.write(records, () => written())
  // keep nc.stats() honest: these are publishes too
  if (typeof p.outMsgs === "number") p.outMsgs += messages
  if (typeof p.outBytes === "number") p.outBytes += payloadBytes
  return true
}
