import { describe, expect, it } from "vitest"
import { BackgroundStores } from "../../plugin/background-stores.ts"

const deferred = () => {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)))
  return { promise, resolve, reject }
}
const tick = () => new Promise((r) => setImmediate(r))

describe("BackgroundStores (chunk writes behind the fetches)", () => {
  it("lets a fetch start only while fewer than max writes are pending", async () => {
    const stores = new BackgroundStores(2, () => {})
    const w1 = deferred()
    const w2 = deferred()
    stores.add(w1.promise, () => {})
    stores.add(w2.promise, () => {})
    let roomed = false
    const waiting = stores.room().then(() => (roomed = true))
    await tick()
    expect(roomed).toBe(false)
    w1.resolve()
    await waiting
    expect(roomed).toBe(true)
    w2.resolve()
    await stores.settle()
  })

  it("frees each write's memory once it settled, and reports the first failure once", async () => {
    const errors: unknown[] = []
    const stores = new BackgroundStores(4, (e) => errors.push(e))
    const freed: string[] = []
    const bad = deferred()
    const alsoBad = deferred()
    stores.add(bad.promise, () => freed.push("bad"))
    stores.add(alsoBad.promise, () => freed.push("alsoBad"))
    stores.add(Promise.resolve(), () => freed.push("ok"))
    const diskFull = new Error("disk full")
    bad.reject(diskFull)
    alsoBad.reject(new Error("later"))
    await stores.settle()
    expect(freed.sort()).toEqual(["alsoBad", "bad", "ok"])
    expect(errors).toEqual([diskFull])
    let thrown: unknown
    try {
      stores.throwIfFailed()
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBe(diskFull)
  })

  it("stops waiting for room when the fetch is aborted", async () => {
    const stores = new BackgroundStores(1, () => {})
    const w = deferred()
    stores.add(w.promise, () => {})
    const ctrl = new AbortController()
    const waiting = stores.room(ctrl.signal).then(
      () => "roomed",
      (e: { code?: string }) => e.code,
    )
    ctrl.abort()
    expect(await waiting).toBe("ABORTED")
    w.resolve()
    await stores.settle()
  })
})
