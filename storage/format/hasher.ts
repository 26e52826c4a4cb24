/**
 * BLAKE3-256 behind one interface. Three backends give identical digests:
 * - native: @napi-rs/blake-hash (Rust `blake3` crate, prebuilt N-API), ~4 GB/s here; the default;
 * - wasm: hash-wasm, ~0.75 GB/s; used where the native binding cannot load;
 * - noble: @noble/hashes, pure JS, ~0.02–0.04 GB/s (~1.4 MB/s under `node --jitless`); used
 *   where neither can (no binding for the platform and no WebAssembly), and the reference the
 *   tests compare against.
 *
 * `DATAFORTS_NO_NATIVE` turns the native binding off as it does the plugin's addons
 * (plugin/native-addon.ts): `1` or `all`, or a comma list naming `blake-hash`.
 *
 * The interface is synchronous so the per-chunk hot path never awaits. hash-wasm's
 * hashers are async to create, so the wasm backend multiplexes one instance with
 * `save()`/`load()` of the ~2 KB state per update (negligible at ≥ 64 KiB updates).
 */
import { type NativePart, nativeDisabled } from "./native-switch.ts"

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

/** The name `DATAFORTS_NO_NATIVE` knows the native hash binding by. */
export const NATIVE_HASH_PART: NativePart = "blake-hash"

/** Whether `DATAFORTS_NO_NATIVE` turns the native hash off (storage/format/native-switch.ts). */
export function nativeHashDisabled(value?: string): boolean {
  return nativeDisabled(NATIVE_HASH_PART, ...(value === undefined ? [] : [value]))
}

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

/** Loads (once per process) the named backend; rejects if it cannot load, or is native and turned off (checked each call). */
export function loadHashBackend(name: HashBackendName): Promise<HashBackend> {
  if (name === "native" && nativeHashDisabled()) {
    return Promise.reject(new Error(`native BLAKE3 turned off (DATAFORTS_NO_NATIVE names ${NATIVE_HASH_PART})`))
  }
  let p = cache.get(name)
  if (p === undefined) {
    p = loaders[name]()
    p.catch(() => cache.delete(name))
    cache.set(name, p)
  }
  return p
}

/** The order {@link defaultHashBackend} tries them in. */
const FALLBACK_CHAIN: readonly HashBackendName[] = ["native", "wasm", "noble"]

/**
 * The default backend: native; wasm when the binding is missing, fails to load or is turned
 * off (`DATAFORTS_NO_NATIVE`); noble (pure JS) when WebAssembly is missing too (`node --jitless`)
 * or cannot instantiate.
 */
export async function defaultHashBackend(): Promise<HashBackend> {
  let last: unknown
  for (const name of FALLBACK_CHAIN) {
    try {
      return await loadHashBackend(name)
    } catch (err) {
      last = err
    }
  }
  throw last
}
