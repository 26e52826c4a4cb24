import { spawnSync } from "node:child_process"
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { tempDir } from "../support/temp.ts"

/**
 * scripts/ensure-nats-server.mjs, which `npm test` and `npm run demo` run first: on a fresh
 * machine with only Node and npm it gets nats-server the way .ci/run does, or says in one line
 * what to run and exits 2.
 */
const SCRIPT = join(import.meta.dirname, "../../scripts/ensure-nats-server.mjs")

let temp: Awaited<ReturnType<typeof tempDir>>
/** A PATH holding only `node` (no nats-server, no apt-get) plus the folders given. */
let bin: string

beforeEach(async () => {
  temp = await tempDir("df-ensure-")
  bin = join(temp.path, "bin")
  await mkdir(bin)
  await symlink(process.execPath, join(bin, "node"))
})
afterEach(() => temp.remove())

function run(env: Record<string, string>, asNobody = false) {
  const base = { PATH: bin, HOME: temp.path, ...env }
  const cmd = asNobody ? "/usr/bin/setpriv" : process.execPath
  const args = asNobody ? ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, SCRIPT] : [SCRIPT]
  const r = spawnSync(cmd, args, { env: base, encoding: "utf8", cwd: dirname(SCRIPT) })
  return { code: r.status, stderr: r.stderr }
}

async function shim(name: string, body: string): Promise<void> {
  await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`)
  await chmod(join(bin, name), 0o755)
}

const isRoot = process.getuid?.() === 0

describe("getting nats-server for the demo and the tests", () => {
  it("a nats-server on PATH is used as it is", async () => {
    await shim("nats-server", "exit 0")
    expect(run({}).code).toBe(0)
  })

  it("NATS_SERVER_BIN stands in for one on PATH", () => {
    expect(run({ NATS_SERVER_BIN: "/opt/nats/nats-server" }).code).toBe(0)
  })

  it("the demo needs none when NATS_URL names a server, the tests still do", () => {
    const withUrl = { NATS_URL: "nats://127.0.0.1:4222" }
    const r = spawnSync(process.execPath, [SCRIPT, "--unless-nats-url"], { env: { PATH: bin, ...withUrl }, encoding: "utf8" })
    expect(r.status).toBe(0)
    expect(run(withUrl).code).toBe(2)
  })

  it.runIf(isRoot)("not root and missing: one line saying what to run, exit 2", () => {
    const r = run({}, true)
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
  })

  it.runIf(isRoot)("root and missing: installs Debian's package with apt-get (update, then install nats-server)", async () => {
    const log = join(temp.path, "apt.log")
    // stands in for apt-get: records its arguments and "installs" a nats-server next to itself
    await shim("apt-get", `echo "$*" >> ${log}\ncase "$*" in *install*) printf '#!/bin/sh\\nexit 0\\n' > ${bin}/nats-server; /bin/chmod +x ${bin}/nats-server;; esac`)
    expect(run({}).code).toBe(0)
    const calls = (await readFile(log, "utf8")).trim().split("\n")
    expect(calls[0]).toMatch(/^update\b/)
    expect(calls[1]).toMatch(/^install\b.*\bnats-server\b/)
  })

  it.runIf(isRoot)("root, but the package does not install: exit 2", async () => {
    await shim("apt-get", "exit 100")
    expect(run({}).code).toBe(2)
  })
})
