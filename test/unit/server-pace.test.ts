import { describe, expect, it, vi } from "vitest"
import { ServerPace } from "../../transfer/server-pace.ts"

/** A PING whose PONG the test answers by hand. */
function pinger() {
  const answers: Array<{ resolve: () => void; reject: (e: Error) => void }> = []
  const ping = () => new Promise<void>((resolve, reject) => answers.push({ resolve, reject }))
  return { ping, answers }
}

const tick = () => new Promise((r) => setImmediate(r))

describe("ServerPace (a holder stays a bounded number of bytes ahead of its server)", () => {
  it("sends a PING every pingEvery bytes and does not wait while few are unanswered", () => {
    const { ping, answers } = pinger()
    const pace = new ServerPace(ping, 1000, () => 2)
    expect(pace.wrote(600)).toBeUndefined()
    expect(answers).toHaveLength(0)
    expect(pace.wrote(600)).toBeUndefined() // 1200 bytes: first PING
    expect(pace.wrote(1000)).toBeUndefined() // second PING
    expect(answers).toHaveLength(2)
    expect(pace.unanswered).toBe(2)
  })

  it("makes the writer wait once more PINGs are unanswered than allowed, until the oldest is answered", async () => {
    const { ping, answers } = pinger()
    const pace = new ServerPace(ping, 1000, () => 2)
    pace.wrote(1000)
    pace.wrote(1000)
    const wait = pace.wrote(1000)
    expect(wait).toBeInstanceOf(Promise)
    let resumed = false
    void wait!.then(() => (resumed = true))
    await tick()
    expect(resumed).toBe(false)
    expect(pace.unanswered).toBe(3)
    answers[0]!.resolve() // the server answers PINGs in order: the oldest first
    await tick()
    expect(resumed).toBe(true)
    expect(pace.unanswered).toBe(2)
    expect(pace.wrote(10)).toBeUndefined()
  })

  it("re-reads its limit at every PING, so a holder can tighten it when a second reader turns up", () => {
    const { ping } = pinger()
    let max = 8
    const pace = new ServerPace(ping, 1000, () => max)
    for (let i = 0; i < 4; i++) expect(pace.wrote(1000)).toBeUndefined()
    max = 2
    expect(pace.wrote(1000)).toBeInstanceOf(Promise)
  })

  it("stops holding the writer after maxWaitMs when the server does not answer at all", async () => {
    vi.useFakeTimers()
    try {
      const { ping } = pinger()
      const pace = new ServerPace(ping, 1, () => 0, 20)
      let resumed = false
      void pace.wrote(1)!.then(() => (resumed = true))
      await vi.advanceTimersByTimeAsync(19)
      expect(resumed).toBe(false)
      await vi.advanceTimersByTimeAsync(2)
      expect(resumed).toBe(true)
      expect(pace.unanswered).toBe(1) // still unanswered: the next write waits again
    } finally {
      vi.useRealTimers()
    }
  })

  it("stops holding the writer when the connection is lost (its PINGs are rejected)", async () => {
    const { ping, answers } = pinger()
    const pace = new ServerPace(ping, 1, () => 0)
    const wait = pace.wrote(1)
    expect(wait).toBeInstanceOf(Promise)
    answers[0]!.reject(new Error("connection closed"))
    await expect(wait).resolves.toBeUndefined()
    expect(pace.unanswered).toBe(0)
  })
})
