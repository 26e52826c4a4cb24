import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { authConfigText } from "../../cli/mesh-auth.ts"
import { UsageError } from "../../cli/exit-codes.ts"
import { type AuthUser, authorizationBlock, natsPermissions } from "../../plugin/auth-config.ts"

const OPERATIONS = join(import.meta.dirname, "../../docs/OPERATIONS.md")

describe("auth-config: the permissions Dataforts needs from NATS", () => {
  it("the example in docs/OPERATIONS.md is exactly what the generator prints for the users it names", () => {
    const doc = readFileSync(OPERATIONS, "utf8")
    const m = /<!-- auth-config example: authorizationBlock\((\[.*\])\) -->\n```\n([\s\S]*?)```/.exec(doc)
    expect(m, "the marked example is in the doc").not.toBeNull()
    // the marker lists the users as a JS literal: quote its keys to read it as JSON
    const users = JSON.parse(m![1]!.replace(/(\w+):/g, '"$1":')) as AuthUser[]
    expect(m![2]).toBe(authorizationBlock(users))
  })

  it("binds a node's fold facts and request subjects to its own id, and a reader and an observer speak for no one", () => {
    const node = natsPermissions("node", { node: "n1", prefix: "p" })
    expect(node.publish.allow.filter((s) => s.startsWith("p.fold."))).toEqual(["p.fold.*.n1"])
    for (const s of ["p.xfer.n1", "p.batch.n1", "p.sync.n1", "p.ping.n1"]) expect(node.subscribe.allow).toContain(s)
    expect(node.subscribe.allow.some((s) => /^p\.(xfer|batch|sync|ping)\.\*$/.test(s))).toBe(false)
    expect(node.allow_responses).toBe(true)
    const reader = natsPermissions("reader", { node: "r1", prefix: "p" })
    expect(reader.publish.allow.some((s) => s.startsWith("p.fold.") || s.startsWith("p.xfer.in"))).toBe(false)
    expect(reader.allow_responses).toBeUndefined()
    const observer = natsPermissions("observer", { prefix: "p", inboxPrefix: "_INBOX_w" })
    expect(observer).toEqual({ publish: { allow: ["p.sync.*"] }, subscribe: { allow: ["p.fold.*.*", "_INBOX_w.>"] } })
  })

  it("refuses what would make a wrong config: wildcards in ids or prefixes, a node without an id, a bad env name, a user twice", () => {
    expect(() => natsPermissions("node", { node: "a.*" })).toThrow(TypeError)
    expect(() => natsPermissions("node", {})).toThrow(TypeError)
    expect(() => natsPermissions("reader", { node: "r", prefix: "p.>" })).toThrow(TypeError)
    expect(() => natsPermissions("admin" as never, { node: "r" })).toThrow(TypeError)
    expect(() => authorizationBlock([{ role: "node", node: "a", passwordEnv: "not-a-var" }])).toThrow(TypeError)
    expect(() => authorizationBlock([{ role: "node", node: "a" }, { role: "reader", node: "a" }])).toThrow(TypeError)
    expect(authorizationBlock([{ role: "node", node: "a", password: 'p"w' }])).toContain('password: "p\\"w"')
  })

  it("net-mesh auth-config: the block, or the permissions as JSON; a reader without --node, an unknown role or a bad id is a usage error", () => {
    expect(authConfigText({ node: "n1", json: false })).toBe(authorizationBlock([{ role: "node", node: "n1" }]))
    const json = JSON.parse(authConfigText({ node: "r1", role: "reader", user: "ci", json: true }))
    expect(json).toEqual({ user: "ci", role: "reader", node: "r1", permissions: JSON.parse(JSON.stringify(natsPermissions("reader", { node: "r1" }))) })
    for (const bad of [{ role: "reader" }, { role: "admin", node: "n1" }, { node: "n1", prefix: "a.*" }, { node: "n1", passwordEnv: "1X" }]) {
      expect(() => authConfigText({ ...bad, json: false }), JSON.stringify(bad)).toThrow(UsageError)
    }
  })
})
