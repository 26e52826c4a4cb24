/**
 * BLAKE3-256 behind one interface. Three backends give identical digests:
 * - native: @napi-rs/blake-hash (Rust `blake3` crate, prebuilt N-API), ~4 GB/s here; the default;
 * - wasm: hash-wasm, ~0.75 GB/s; used where the native binding cannot load;
 * - noble: @noble/hashes, pure JS, ~0.04 GB/s; the reference the tests compare against
 *   (a dev dependency, so it is loaded only when asked for).
 *
 * The interface is synchronous so the per-chunk hot path never awaits. hash-wasm's
 * hashers are async to create, so the wasm backend multiplexes one instance with
 * `save()`/`load()` of the ~2 KB state per update (negligible at ≥ 64 KiB updates).
 */
export interface Hasher {
  update(bytes: Uint8Array): Hasher
  /** The 32-byte digest; the hasher must not be used afterwards. */
  digest(): Uint8Array
}

export interface HashBackend {
  readonly name: "native" | "wasm" | "noble"
  create(): Hasher
  /** One-shot digest of `bytes`. */
  hash(bytes: Uint8Array): Uint8Array
}

export type HashBackendName = HashBackend["name"]

async function nativeBackend(): Promise<HashBackend> {
  const { Blake3Hasher, blake3 } = await import("@napi-rs/blake-hash")
  const asU8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  return {
    name: "native",
    create() {
      const h = new Blake3Hasher()
      const self: Hasher = {
        update(bytes) {
          h.update(bytes as Buffer)
          return self
        },
        digest: () => asU8(h.digestBuffer()),
      }
      return self
    },
    hash: (bytes) => asU8(blake3(bytes as Buffer)),
  }
}

async function wasmBackend(): Promise<HashBackend> {
  const { createBLAKE3 } = await import("hash-wasm")
  const shared = await createBLAKE3(256)
  shared.init()
  const initial = shared.save()
  return {
    name: "wasm",
    create() {
      let state = initial
      const self: Hasher = {
        update(bytes) {
          shared.load(state).update(bytes)
          state = shared.save()
          return self
        },
        digest: () => shared.load(state).digest("binary"),
      }
      return self
    },
    hash: (bytes) => shared.init().update(bytes).digest("binary"),
  }
}

async function nobleBackend(): Promise<HashBackend> {
  const { blake3 } = await import("@noble/hashes/blake3.js")
  return {
    name: "noble",
    create() {
      const h = blake3.create()
      const self: Hasher = {
        update(bytes) {
          h.update(bytes)
          return self
        },
        digest: () => h.digest(),
      }
      return self
    },
    hash: (bytes) => blake3(bytes),
  }
}

const loaders: Record<HashBackendName, () => Promise<HashBackend>> = {
  native: nativeBackend,
  wasm: wasmBackend,
  noble: nobleBackend,
}

const cache = new Map<HashBackendName, Promise<HashBackend>>()

/** Loads (once per process) the named backend; rejects if it cannot load. */
export function loadHashBackend(name: HashBackendName): Promise<HashBackend> {
  let p = cache.get(name)
  if (p === undefined) {
    p = loaders[name]()
    p.catch(() => cache.delete(name))
    cache.set(name, p)
  }
  return p
}

/** The default backend: native, falling back to wasm when the binding is missing. */
export async function defaultHashBackend(): Promise<HashBackend> {
  try {
    return await loadHashBackend("native")
  } catch {
    return loadHashBackend("wasm")
  }
}
