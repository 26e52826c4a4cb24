import { spawn } from "node:child_process"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { spawnTs } from "../support/child.ts"
import { tempDir } from "../support/temp.ts"

/**
 * The CLIs' basics (issue 13): help per command, --version, one-line usage errors with exit 2,
 * put --tag, ls of top-level blobs, a store in use (17, naming the holder's pid), a missing
 * input file (18) told apart from a missing blob (4). Runs the compiled CLIs (npm run build).
 */
const ROOT = join(import.meta.dirname, "../..")
const NET_BLOB = join(ROOT, "dist/cli/net-blob.js")
const NET_MESH = join(ROOT, "dist/cli/net-mesh.js")
// no NATS_URL or DATAFORTS_DIR from the caller's shell; net-mesh never reaches a server here
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NATS_URL" && k !== "DATAFORTS_DIR"))
const VERSION = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }).version
const UNKNOWN_REF = `df1-chunk-5-${"ab".repeat(32)}`

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

function run(bin: string, args: string[], stdin?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: ENV, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    proc.stdout!.on("data", (d: Buffer) => (stdout += d))
    proc.stderr!.on("data", (d: Buffer) => (stderr += d))
    proc.once("error", reject)
    proc.once("close", (code) => resolve({ code, stdout, stderr }))
    if (stdin !== undefined) proc.stdin!.end(stdin)
  })
}

/** Exactly one line on stderr, and no stack trace in it. */
function expectOneLine(r: Ran, what: string): void {
  const lines = r.stderr.split("\n").filter((l) => l !== "")
  expect(lines, `${what}: stderr ${JSON.stringify(r.stderr)}`).toHaveLength(1)
  expect(r.stderr, what).not.toMatch(/^\s+at /m)
}

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { ref: string; tags: Record<string, string>; child: boolean })

describe("net-blob and net-mesh basics", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  async function work(): Promise<string> {
    const w = await tempDir("df-cli-basics-")
    cleanups.push(w.remove)
    return w.path
  }

  it("--version and -V print the package.json version, exit 0", async () => {
    const runs = await Promise.all([run(NET_BLOB, ["--version"]), run(NET_BLOB, ["-V"]), run(NET_MESH, ["--version"]), run(NET_MESH, ["-V"])])
    for (const r of runs) {
      expect(r.code).toBe(0)
      expect(r.stdout.trim().split(/\s+/)).toContain(VERSION)
    }
  })

  it("help per command (help <cmd>, <cmd> --help, -h) exits 0 and names the command's flags and environment", async () => {
    const cases: Array<[string, string[], string[]]> = [
      [NET_BLOB, ["--help"], ["put", "get", "stat", "ls", "rm", "--version"]],
      [NET_BLOB, ["help"], ["put", "ls"]],
      [NET_BLOB, ["help", "put"], ["--tag", "--dir", "--json", "--quiet", "DATAFORTS_DIR", "net-blob put"]],
      [NET_BLOB, ["put", "--help"], ["--tag", "--dir", "DATAFORTS_DIR"]],
      [NET_BLOB, ["get", "-h"], ["--out", "--dir", "DATAFORTS_DIR"]],
      [NET_BLOB, ["help", "ls"], ["--all", "--tag", "--json"]],
      [NET_BLOB, ["stat", "--help"], ["--dir", "--json"]],
      [NET_BLOB, ["rm", "--help"], ["--dir"]],
      [NET_MESH, ["--help"], ["transfer send-blob", "transfer recv-dir", "nodes", "holders"]],
      [NET_MESH, ["help", "transfer"], ["send-blob", "recv-blob", "send-dir", "recv-dir"]],
      [NET_MESH, ["help", "transfer", "recv-blob"], ["--out", "--server", "--wait", "NATS_URL", "DATAFORTS_DIR"]],
      [NET_MESH, ["transfer", "send-dir", "--help"], ["--server", "--node", "--prefix", "NATS_URL"]],
      [NET_MESH, ["nodes", "--help"], ["--wait", "--server"]],
      [NET_MESH, ["holders", "-h"], ["--wait", "--json"]],
    ]
    const runs = await Promise.all(cases.map(([bin, args]) => run(bin, args)))
    runs.forEach((r, i) => {
      const [, args, mentions] = cases[i]!
      expect(r.code, args.join(" ")).toBe(0)
      for (const m of mentions) expect(r.stdout, `${args.join(" ")} mentions ${m}`).toContain(m)
    })
  })

  it("every usage mistake is one line on stderr, no stack, exit 2", async () => {
    const dir = await work()
    const store = join(dir, "store")
    const file = join(dir, "in.txt")
    await writeFile(file, "x")
    const cases: Array<[string, string[]]> = [
      [NET_BLOB, ["ls", "--foo", "--dir", store]],
      [NET_BLOB, ["--foo"]],
      [NET_BLOB, ["get", UNKNOWN_REF, "--dir", store, "--out"]],
      [NET_BLOB, ["put", "--dir", store]],
      [NET_BLOB, ["stat", "--dir", store]],
      [NET_BLOB, ["stat", UNKNOWN_REF, "extra", "--dir", store]],
      [NET_BLOB, ["stat", UNKNOWN_REF, "--out", "x", "--dir", store]],
      [NET_BLOB, ["put", file, "--tag", "no-equals", "--dir", store]],
      [NET_BLOB, ["ls", "--json=yes", "--dir", store]],
      [NET_BLOB, ["frobnicate", "--dir", store]],
      [NET_BLOB, ["ls"]],
      [NET_BLOB, ["help", "frobnicate"]],
      [NET_MESH, ["nodes", "--bogus"]],
      [NET_MESH, ["transfer", "recv-blob", UNKNOWN_REF]],
      [NET_MESH, ["transfer", "send-blob"]],
      [NET_MESH, ["transfer", "nope"]],
      [NET_MESH, ["holders", "--wait"]],
      [NET_MESH, ["nodes", "--wait", "soon"]],
      [NET_MESH, ["nodes", "--node", "bad id"]],
    ]
    const runs = await Promise.all(cases.map(([bin, args]) => run(bin, args)))
    runs.forEach((r, i) => {
      const what = cases[i]![1].join(" ")
      expect(r.code, `${what}: ${r.stderr}`).toBe(2)
      expectOneLine(r, what)
    })
  })

  it("no command at all prints the overview on stderr and exits 2", async () => {
    const [blob, mesh] = await Promise.all([run(NET_BLOB, []), run(NET_MESH, [])])
    for (const r of [blob, mesh]) {
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain("usage:")
    }
  })

  it("a missing input file (18) is told apart from a missing blob (4), each in one line", async () => {
    const dir = await work()
    const store = join(dir, "store")
    const [put, out, send, stat, get] = await Promise.all([
      run(NET_BLOB, ["put", join(dir, "nope.bin"), "--dir", store]),
      run(NET_BLOB, ["get", UNKNOWN_REF, "--out", join(dir, "no-such-folder", "x"), "--dir", join(dir, "store1")]),
      run(NET_MESH, ["transfer", "send-blob", join(dir, "nope.bin"), "--server", "nats://127.0.0.1:1"]),
      run(NET_BLOB, ["stat", UNKNOWN_REF, "--dir", join(dir, "store2")]),
      run(NET_BLOB, ["get", UNKNOWN_REF, "--dir", join(dir, "store3")]),
    ])
    for (const [r, what] of [[put, "put"], [out, "get --out"], [send, "send-blob"]] as const) {
      expect(r.code, r.stderr).toBe(18)
      expectOneLine(r, what)
    }
    for (const [r, what] of [[stat, "stat"], [get, "get"]] as const) {
      expect(r.code, r.stderr).toBe(4)
      expectOneLine(r, what)
    }
  })

  it("put --tag stores tags; ls shows top-level blobs only (a tree's parts with --all) and --tag keeps blobs carrying every tag", async () => {
    const dir = await work()
    const store = join(dir, "store")
    const tree = join(dir, "tree")
    await mkdir(join(tree, "sub"), { recursive: true })
    await writeFile(join(tree, "a.txt"), "file a")
    await writeFile(join(tree, "sub", "b.txt"), "file b")
    const file = join(dir, "f.bin")
    await writeFile(file, "a file of its own")
    const base = ["--dir", store]

    const putFile = await run(NET_BLOB, ["put", file, "--tag", "k=v", "--tag", "x=y", ...base])
    expect(putFile.code, putFile.stderr).toBe(0)
    const fileRef = putFile.stdout.trim()
    const putTree = await run(NET_BLOB, ["put", tree, "--tag", "t=1", ...base])
    expect(putTree.code, putTree.stderr).toBe(0)
    const treeRef = putTree.stdout.trim()
    const putStdin = await run(NET_BLOB, ["put", "-", "--json", ...base], "from stdin")
    expect(putStdin.code, putStdin.stderr).toBe(0)
    const stdinRef = (JSON.parse(putStdin.stdout) as { ref: string }).ref

    // one after another: a store is one process's at a time (a second one exits 17)
    const lsR = await run(NET_BLOB, ["ls", "--json", ...base])
    const allR = await run(NET_BLOB, ["ls", "--all", "--json", ...base])
    const bothR = await run(NET_BLOB, ["ls", "--tag", "k=v", "--tag", "x=y", "--json", ...base])
    const mismatchR = await run(NET_BLOB, ["ls", "--tag", "k=v", "--tag", "x=z", "--json", ...base])
    const textR = await run(NET_BLOB, ["ls", ...base])
    for (const r of [lsR, allR, bothR, mismatchR, textR]) expect(r.code, r.stderr).toBe(0)

    const top = jsonLines(lsR.stdout)
    expect(top.map((s) => s.ref).sort()).toEqual([fileRef, treeRef, stdinRef].sort())
    expect(top.find((s) => s.ref === fileRef)!.tags).toEqual({ k: "v", x: "y" })
    expect(top.find((s) => s.ref === treeRef)!.tags).toEqual({ t: "1" })
    // --all adds the tree's two files and its subdirectory
    const every = jsonLines(allR.stdout)
    expect(every).toHaveLength(6)
    expect(every.filter((s) => s.child)).toHaveLength(3)
    expect(jsonLines(bothR.stdout).map((s) => s.ref)).toEqual([fileRef])
    expect(mismatchR.stdout).toBe("")
    // text: one line per top-level blob, with its size, kind and tags
    const lines = textR.stdout.trim().split("\n")
    expect(lines).toHaveLength(3)
    expect(lines.find((l) => l.startsWith(fileRef))).toMatch(/17 B\s+chunk\s+k=v,x=y\s+\d+s$/)

    // a part of the tree put on its own becomes top-level
    const promoted = await run(NET_BLOB, ["put", join(tree, "a.txt"), ...base])
    expect(promoted.code, promoted.stderr).toBe(0)
    const after = await run(NET_BLOB, ["ls", "--json", ...base])
    expect(jsonLines(after.stdout).map((s) => s.ref)).toContain(promoted.stdout.trim())
    expect(jsonLines(after.stdout)).toHaveLength(4)
  })

  it("a reader that closes the pipe early (get | head) ends the command quietly with exit 0", async () => {
    const dir = await work()
    const store = join(dir, "store")
    const file = join(dir, "big.bin")
    await writeFile(file, Buffer.alloc(24 << 20, 7))
    const put = await run(NET_BLOB, ["put", file, "--dir", store, "-q"])
    expect(put.code, put.stderr).toBe(0)
    const proc = spawn(process.execPath, [NET_BLOB, "get", put.stdout.trim(), "--dir", store], { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    proc.stderr!.on("data", (d: Buffer) => (stderr += d))
    proc.stdout!.once("data", () => proc.stdout!.destroy())
    const code = await new Promise<number | null>((resolve) => proc.once("close", resolve))
    expect(code, stderr).toBe(0)
    expect(stderr).toBe("")
    // and the store was closed cleanly: it opens at once
    expect((await run(NET_BLOB, ["ls", "--dir", store])).code).toBe(0)
  })

  it("a store held by another process exits 17 with one line naming the holder's pid; it opens again once the holder closes", async () => {
    const dir = await work()
    const store = join(dir, "store")
    const holder = spawnTs("cli-hold-store.ts", [store])
    cleanups.push(async () => {
      if (holder.proc.exitCode === null && holder.proc.signalCode === null) holder.proc.kill("SIGKILL")
      await holder.exited
    })
    await holder.line((l) => l === "ready")
    const pid = String(holder.proc.pid)
    const [ls, put] = await Promise.all([
      run(NET_BLOB, ["ls", "--dir", store]),
      run(NET_BLOB, ["put", "-", "--dir", store], "bytes"),
    ])
    for (const r of [ls, put]) {
      expect(r.code, r.stderr).toBe(17)
      expectOneLine(r, "locked")
      expect(r.stderr).toContain(pid)
    }
    holder.proc.kill("SIGTERM")
    expect(await holder.exited).toBe(0)
    const free = await run(NET_BLOB, ["ls", "--dir", store])
    expect(free.code, free.stderr).toBe(0)
  })
})
