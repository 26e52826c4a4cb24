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
  it("hands out write slots only while fewer than max writes run, first come first served", async () => {
    const stores = new BackgroundStores(2, () => {})
    const w1 = deferred()
    const w2 = deferred()
    await stores.reserve()
    stores.add(w1.promise, () => {})
    await stores.reserve()
    stores.add(w2.promise, () => {})
    const order: string[] = []
    const first = stores.reserve().then(() => order.push("first"))
    const second = stores.reserve().then(() => order.push("second"))
    await tick()
    expect(order).toEqual([])
    w2.resolve()
    await first
    expect(order).toEqual(["first"])
    w1.resolve()
    await second
    expect(order).toEqual(["first", "second"])
    await stores.settle()
  })

  it("frees each write's memory once it settled, and reports the first failure once", async () => {
    const errors: unknown[] = []
    const stores = new BackgroundStores(4, (e) => errors.push(e))
    const freed: string[] = []
    const bad = deferred()
    const alsoBad = deferred()
    for (let i = 0; i < 3; i++) await stores.reserve()
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

  it("stops waiting for a slot when the fetch is aborted", async () => {
    const stores = new BackgroundStores(1, () => {})
    const w = deferred()
    await stores.reserve()
    stores.add(w.promise, () => {})
    const ctrl = new AbortController()
    const waiting = stores.reserve(ctrl.signal).then(
      () => "reserved",
      (e: { code?: string }) => e.code,
    )
    ctrl.abort()
    expect(await waiting).toBe("ABORTED")
    w.resolve()
    await stores.settle()
  })
})
