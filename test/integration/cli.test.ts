import { type ChildProcess, spawn } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, expect, inject, it } from "vitest"
import { seededBytes } from "../support/bytes.ts"
import { freshPrefix } from "../support/nodes.ts"
import { until } from "../support/poll.ts"
import { tempDir } from "../support/temp.ts"
import { describeTree, makeTree } from "../support/tree.ts"

const ROOT = join(import.meta.dirname, "../..")
const NET_BLOB = join(ROOT, "dist/cli/net-blob.js")
const NET_MESH = join(ROOT, "dist/cli/net-mesh.js")
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NATS_URL" && k !== "DATAFORTS_DIR"))

interface Started {
  proc: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

/** Starts `node <bin> ...args` as a real child process, collecting its output. */
function start(bin: string, args: string[]): Started {
  const proc = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"] })
  const out: Buffer[] = []
  let err = ""
  proc.stdout!.on("data", (d: Buffer) => out.push(d))
  proc.stderr!.on("data", (d: Buffer) => (err = (err + d).slice(-8000)))
  const exited = new Promise<number | null>((resolve) => proc.once("close", (code) => resolve(code)))
  return { proc, stdout: () => Buffer.concat(out).toString("utf8"), stderr: () => err, exited }
}

/** Runs a CLI to completion: exit code, stdout (raw bytes and text) and stderr. */
async function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const s = start(bin, args)
  const code = await s.exited
  return { code, stdout: s.stdout(), stderr: s.stderr() }
}

const UNKNOWN_REF = `df1-chunk-5-${"ab".repeat(32)}`

describe("net-blob as a child process", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it("put, get, stat, ls and rm round-trip a file through a --dir store", async () => {
    const work = await tempDir("df-cli-")
    cleanups.push(work.remove)
    const store = join(work.path, "store")
    const file = join(work.path, "in.bin")
    const bytes = seededBytes(3 << 20, 11)
    await writeFile(file, bytes)

    const put = await run(NET_BLOB, ["put", file, "--dir", store, "--tag", "k=v"])
    expect(put.code).toBe(0)
    const ref = put.stdout.trim()

    const copy = join(work.path, "copy.bin")
    expect((await run(NET_BLOB, ["get", ref, "--out", copy, "--dir", store])).code).toBe(0)
    expect(Buffer.compare(await readFile(copy), bytes)).toBe(0)

    const stat = await run(NET_BLOB, ["stat", ref, "--dir", store, "--json"])
    expect(stat.code).toBe(0)
    expect(JSON.parse(stat.stdout)).toMatchObject({ ref, size: bytes.length })

    const ls = await run(NET_BLOB, ["ls", "--dir", store, "--json"])
    expect(ls.code).toBe(0)
    expect(ls.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { ref: string }).ref)).toContain(ref)

    expect((await run(NET_BLOB, ["rm", ref, "--dir", store])).code).toBe(0)
    expect((await run(NET_BLOB, ["stat", ref, "--dir", store])).code).toBe(4)
  })

  it("exits 3 for a malformed ref and 4 for a well-formed ref the store does not hold", async () => {
    const work = await tempDir("df-cli-")
    cleanups.push(work.remove)
    const store = join(work.path, "store")
    expect((await run(NET_BLOB, ["stat", "not-a-ref", "--dir", store])).code).toBe(3)
    expect((await run(NET_BLOB, ["get", "df1-blob-zz", "--dir", store])).code).toBe(3)
    expect((await run(NET_BLOB, ["stat", UNKNOWN_REF, "--dir", store])).code).toBe(4)
    expect((await run(NET_BLOB, ["get", UNKNOWN_REF, "--out", join(work.path, "x"), "--dir", store])).code).toBe(4)
  })
})

describe("net-mesh as child processes against a shared nats-server", () => {
  const url = inject("natsUrl")
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  /** Starts a sender (`send-blob`/`send-dir`) and waits for the ref it prints. */
  async function sender(args: string[]): Promise<{ ref: string; s: Started }> {
    const s = start(NET_MESH, ["transfer", ...args, "--server", url])
    cleanups.push(async () => {
      // SIGTERM is a clean close (the temp store is removed); SIGKILL only if that hangs
      if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGTERM")
      const killer = setTimeout(() => s.proc.kill("SIGKILL"), 20_000)
      await s.exited
      clearTimeout(killer)
    })
    const ref = await until(
      () => {
        if (s.proc.exitCode !== null) throw new Error(`sender exited ${s.proc.exitCode}: ${s.stderr()}`)
        const line = s.stdout().split("\n")[0]
        return s.stdout().includes("\n") ? line : undefined
      },
      "the sender's ref",
      60_000,
    )
    return { ref, s }
  }

  it("recv-blob in one process gets identical bytes from send-blob in another, reports the sender as source, and the sender exits 0 on SIGTERM", async () => {
    const work = await tempDir("df-cli-mesh-")
    cleanups.push(work.remove)
    const prefix = freshPrefix()
    const file = join(work.path, "artifact.bin")
    const bytes = seededBytes(12 << 20, 21)
    await writeFile(file, bytes)
    const { ref, s } = await sender(["send-blob", file, "--prefix", prefix, "--node", "cli-sender"])

    const out = join(work.path, "received.bin")
    const recv = await run(NET_MESH, ["transfer", "recv-blob", ref, "--out", out, "--server", url, "--prefix", prefix, "--node", "cli-receiver", "--wait", "15000", "--json"])
    expect(recv.code, recv.stderr).toBe(0)
    expect(Buffer.compare(await readFile(out), bytes)).toBe(0)
    const report = JSON.parse(recv.stdout) as { bytes: number; sources: { peers: Record<string, number> } }
    expect(report.bytes).toBe(bytes.length)
    expect(report.sources.peers["cli-sender"]).toBeGreaterThanOrEqual(bytes.length)

    const holders = await run(NET_MESH, ["holders", ref, "--server", url, "--prefix", prefix, "--wait", "3000", "--json"])
    expect(holders.code, holders.stderr).toBe(0)
    expect((JSON.parse(holders.stdout) as { holders: Array<{ node: string }> }).holders.map((h) => h.node)).toContain("cli-sender")

    const nodes = await run(NET_MESH, ["nodes", "--server", url, "--prefix", prefix, "--wait", "3000", "--json"])
    expect(nodes.code, nodes.stderr).toBe(0)
    expect((JSON.parse(nodes.stdout) as { nodes: Array<{ node: string }> }).nodes.map((n) => n.node)).toContain("cli-sender")

    s.proc.kill("SIGTERM")
    expect(await s.exited).toBe(0)
  })

  it("recv-dir materializes a tree identical to the one send-dir stored", async () => {
    const work = await tempDir("df-cli-mesh-")
    cleanups.push(work.remove)
    const prefix = freshPrefix()
    const tree = join(work.path, "tree")
    await makeTree(tree, 5)
    const { ref } = await sender(["send-dir", tree, "--prefix", prefix])
    const out = join(work.path, "copy")
    const recv = await run(NET_MESH, ["transfer", "recv-dir", ref, "--out", out, "--server", url, "--prefix", prefix, "--wait", "15000", "--json"])
    expect(recv.code, recv.stderr).toBe(0)
    expect(await describeTree(out)).toEqual(await describeTree(tree))
  })

  it("exits 3 for a malformed ref, 9 when no node holds the ref, and 2 for a missing --out", async () => {
    const prefix = freshPrefix()
    const base = ["--server", url, "--prefix", prefix, "--wait", "300"]
    expect((await run(NET_MESH, ["transfer", "recv-blob", "not-a-ref", "--out", "/tmp/never", ...base])).code).toBe(3)
    expect((await run(NET_MESH, ["transfer", "recv-blob", UNKNOWN_REF, "--out", "/tmp/never", ...base])).code).toBe(9)
    expect((await run(NET_MESH, ["holders", UNKNOWN_REF, ...base])).code).toBe(9)
    expect((await run(NET_MESH, ["transfer", "recv-blob", UNKNOWN_REF, ...base])).code).toBe(2)
  })
})
