import { afterEach, describe, expect, it, vi } from "vitest"
import { loadHashBackend, nativeHashDisabled, type HashBackendName } from "../../storage/format/hasher.ts"
import { toHex } from "../../storage/format/hex.ts"
import { randomSplits, seededBytes } from "../support/bytes.ts"

/** Official BLAKE3 test input: byte i = i mod 251. Answers from test_vectors.json. */
const officialInput = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251)
const KNOWN: Array<[number, string]> = [
  [0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"],
  [1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"],
  [1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"],
  [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
]

describe.each<HashBackendName>(["native", "wasm", "noble"])("BLAKE3 backend %s", (name) => {
  it("gives the official known answers", async () => {
    const b = await loadHashBackend(name)
    for (const [len, hex] of KNOWN) expect(toHex(b.hash(officialInput(len)))).toBe(hex)
  })

  it("gives the same digest incrementally, however the input is split", async () => {
    const b = await loadHashBackend(name)
    const bytes = seededBytes(200_000, 4)
    const h = b.create()
    for (const piece of randomSplits(bytes, 9, 9000)) h.update(piece)
    expect(toHex(h.digest())).toBe(toHex(b.hash(bytes)))
  })

  it("keeps concurrent hashers independent", async () => {
    const b = await loadHashBackend(name)
    const x = b.create().update(new Uint8Array([1]))
    const y = b.create().update(new Uint8Array([2]))
    x.update(new Uint8Array([3]))
    expect(toHex(x.digest())).toBe(toHex(b.hash(new Uint8Array([1, 3]))))
    expect(toHex(y.digest())).toBe(toHex(b.hash(new Uint8Array([2]))))
  })
})

describe("BLAKE3 backends", () => {
  it("agree with the reference on 3 MiB + 7 of seeded bytes", async () => {
    const bytes = seededBytes((3 << 20) + 7, 8)
    const [n, w, r] = await Promise.all((["native", "wasm", "noble"] as const).map(loadHashBackend))
    const ref = toHex(r!.hash(bytes))
    expect(toHex(n!.hash(bytes))).toBe(ref)
    expect(toHex(w!.hash(bytes))).toBe(ref)
  })
})

describe("the default backend falls back: native, then wasm, then noble", () => {
  afterEach(() => {
    vi.unstubAllEnvs()
    vi.unstubAllGlobals()
  })

  /** A fresh hasher module: its per-process backend cache starts empty. */
  const freshHasher = async () => {
    vi.resetModules()
    return import("../../storage/format/hasher.ts")
  }

  it("reads DATAFORTS_NO_NATIVE as the addons do: 1/all, or a comma list naming blake-hash", () => {
    for (const env of [undefined, "", "0", "malloc-tune", "rename-exchange,malloc-tune", "blake-hash-x"]) expect(nativeHashDisabled(env), String(env)).toBe(false)
    for (const env of ["1", "all", "blake-hash", "malloc-tune, blake-hash"]) expect(nativeHashDisabled(env), env).toBe(true)
  })

  it("is native when nothing is turned off", async () => {
    const { defaultHashBackend } = await freshHasher()
    expect((await defaultHashBackend()).name).toBe("native")
  })

  it("is wasm with the native binding turned off, even once native was loaded, and refuses native when asked for it", async () => {
    await loadHashBackend("native")
    vi.stubEnv("DATAFORTS_NO_NATIVE", "malloc-tune,blake-hash")
    const { defaultHashBackend } = await import("../../storage/format/hasher.ts")
    expect((await defaultHashBackend()).name).toBe("wasm")
    await expect(loadHashBackend("native")).rejects.toThrow(/DATAFORTS_NO_NATIVE/)
  })

  it("is noble (pure JS) with no native binding and no WebAssembly, and gives the same digests", async () => {
    vi.stubEnv("DATAFORTS_NO_NATIVE", "1")
    vi.stubGlobal("WebAssembly", undefined)
    const { defaultHashBackend } = await freshHasher()
    const backend = await defaultHashBackend()
    expect(backend.name).toBe("noble")
    for (const [len, hex] of KNOWN) expect(toHex(backend.hash(officialInput(len)))).toBe(hex)
    const bytes = seededBytes(300_000, 12)
    const h = backend.create()
    for (const piece of randomSplits(bytes, 5, 70_000)) h.update(piece)
    vi.unstubAllGlobals()
    vi.unstubAllEnvs()
    expect(toHex(h.digest())).toBe(toHex((await loadHashBackend("native")).hash(bytes)))
  })
})
