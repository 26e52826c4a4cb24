import { open } from "node:fs/promises"

/** Everything `put` accepts. */
export type PutInput = Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | NodeJS.ReadableStream

/** One normalised shape for the ingest path, and whether its pieces are immutable. */
export interface NormalisedInput {
  readonly source: AsyncIterable<Uint8Array>
  /** True for a caller's whole Uint8Array: chunks may be views of it (zero copy). */
  readonly stable: boolean
}

export function normaliseInput(input: PutInput): NormalisedInput {
  if (input instanceof Uint8Array) return { source: once(input), stable: true }
  if (isWebStream(input)) return { source: fromWebStream(input), stable: false }
  if (input !== null && typeof input === "object" && Symbol.asyncIterator in input) {
    return { source: bytesOnly(input as AsyncIterable<unknown>), stable: false }
  }
  throw new TypeError("put accepts a Uint8Array, an AsyncIterable<Uint8Array>, a Node Readable or a web ReadableStream")
}

/**
 * A file as a stream of pieces read into ONE reused 4 MiB buffer. Safe for the ingest path,
 * which copies every piece before it asks for the next one; it saves an allocation (and the
 * garbage) per piece that a Node ReadStream makes.
 */
export async function* fileSource(path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, "r")
  try {
    const buf = new Uint8Array(4 << 20)
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

async function* bytesOnly(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const piece of source) {
    if (!(piece instanceof Uint8Array)) throw new TypeError(`stream yielded ${typeof piece}, expected Uint8Array`)
    yield piece
  }
}

function isWebStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof x === "object" && x !== null && typeof (x as ReadableStream).getReader === "function"
}

async function* fromWebStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      if (!(value instanceof Uint8Array)) throw new TypeError("ReadableStream yielded a non-Uint8Array")
      yield value
    }
  } finally {
    // stopping early (an error or an abort) cancels the caller's stream
    await reader.cancel().catch(() => {})
    reader.releaseLock()
  }
}
