import { execFileSync, spawnSync } from "node:child_process"
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type NatsServerHandle, startNatsServer } from "../support/nats-server.ts"
import { tempDir } from "../support/temp.ts"

/**
 * The package as a user gets it: `npm pack`, install the tarball into a fresh project, then use
 * it with plain `node` and the user's own strict `tsconfig`. Once as installed normally, once on
 * a machine with no compiler (cc, gcc, g++, make and python3 all fail), which must make no
 * difference: the package runs no install script and ships its optional addons prebuilt.
 */
const ROOT = join(import.meta.dirname, "../..")
/** The TypeScript our users run: the current 7 and the 5.9 line many projects still pin. */
const TSC = { "7": join(ROOT, "node_modules/typescript/bin/tsc"), "5": join(ROOT, "node_modules/typescript5/bin/tsc") }
const ours = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string; devDependencies: Record<string, string> }

let temp: Awaited<ReturnType<typeof tempDir>>
let tarball: string
let server: NatsServerHandle

beforeAll(async () => {
  temp = await tempDir("df-consumer-")
  server = await startNatsServer()
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", temp.path], { cwd: ROOT, encoding: "utf8" })
  tarball = join(temp.path, out.trim().split("\n").pop()!)
}, 180_000)

afterAll(async () => {
  await server?.stop()
  await temp?.remove()
})

/** A PATH whose compilers and build tools all fail, in front of the real one. */
async function noCompilerPath(): Promise<string> {
  const shims = join(temp.path, "no-compiler")
  await mkdir(shims, { recursive: true })
  for (const tool of ["cc", "gcc", "g++", "c++", "make", "python3", "python"]) {
    await writeFile(join(shims, tool), `#!/bin/sh\necho "${tool}: not installed" >&2\nexit 127\n`)
    await chmod(join(shims, tool), 0o755)
  }
  return `${shims}:${process.env.PATH}`
}

/** What a user writes with plain node: a put/get round trip on disk, and a fetch between two nodes over NATS. */
const ROUND_TRIP = `
import { Blobs, BlobRef, fetchBlob, NotFoundError } from "dataforts"
import { connect } from "@nats-io/transport-node"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24)
const local = await Blobs.open({ dir: mkdtempSync(join(tmpdir(), "df-c-")) })
const ref = await local.put(bytes, { tags: { from: "consumer" } })
const back = await local.get(BlobRef.parse(String(ref)))
if (Buffer.compare(back, bytes) !== 0) throw new Error("bytes differ")
await local.get(BlobRef.parse("df1-chunk-1-" + "0".repeat(64))).then(() => { throw new Error("found a blob never put") }, (e) => { if (!(e instanceof NotFoundError)) throw e })
await local.close()

const [na, nb] = await Promise.all([connect({ servers: process.env.NATS_URL }), connect({ servers: process.env.NATS_URL })])
const prefix = "consumer" + process.pid
const a = await Blobs.open({ memory: true, nats: na, node: "a", prefix })
const b = await Blobs.open({ memory: true, nats: nb, node: "b", prefix, discoveryTimeoutMs: 5000 })
const remote = await a.put(bytes)
await fetchBlob(b, remote)
if (Buffer.compare(await b.get(remote), bytes) !== 0) throw new Error("fetched bytes differ")
await b.close(); await a.close(); await na.close(); await nb.close()
console.log("round trip ok", ref.kind, ref.size)
`

/** What a user writes in TypeScript: the public types used the way the README shows. */
const TYPED = `
import { Blobs, BlobRef, DatafortsError, defineFold, fetchDir, storeDir, type BlobStat, type ErrorCode, type PutOptions, type TreeEntry } from "dataforts"
import * as Schema from "effect/Schema"

export async function use(dir: string): Promise<number> {
  await using blobs = await Blobs.open({ dir })
  const options: PutOptions = { tags: { version: "v3" }, signal: AbortSignal.timeout(1000) }
  const ref: BlobRef = await blobs.put(new Uint8Array(8), options)
  const stat: BlobStat | undefined = await blobs.stat(ref)
  for await (const part of blobs.read(ref)) part.byteLength
  const root = await storeDir(blobs, dir)
  await fetchDir(blobs, root, dir + ".out", { onProgress: (p) => p.bytes })
  const entries: TreeEntry[] = []
  try { await blobs.get(BlobRef.parse("nope")) } catch (e) { if (e instanceof DatafortsError) { const c: ErrorCode = e.code; c } }
  const Job = Schema.Struct({ job: Schema.String, ref: Schema.String })
  const fold = defineFold({
    name: "jobs",
    data: Job,
    entry: Job,
    initial: () => new Map<string, string>(),
    apply: (s, d) => s.set(d.job, d.ref),
    snapshotOrigin: (s) => [...s].map(([job, ref]) => ({ job, ref })),
    restoreOrigin: (s, _origin, entries) => new Map(entries.map((e) => [e.job, e.ref] as const)),
  })
  return entries.length + (stat?.size ?? 0) + (fold ? 1 : 0)
}
`
/** A mistake a user could make: the check must report it (so it can fail). */
const MISTAKE = `
import { Blobs } from "dataforts"
const blobs = await Blobs.open({ memory: true })
const n: number = await blobs.put(new Uint8Array(1))
`

function tsconfig(module: string, moduleResolution: string): string {
  return JSON.stringify({
    compilerOptions: {
      module,
      moduleResolution,
      target: "es2022",
      lib: ["es2023", "esnext.disposable"],
      strict: true,
      exactOptionalPropertyTypes: true,
      noPropertyAccessFromIndexSignature: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: false,
      noEmit: true,
      types: ["node"],
    },
    include: ["typed.ts", "mistake.ts"],
  })
}

/** tsc's error lines for the project, as `file: code`. */
function typeErrors(tsc: string, project: string): string[] {
  const r = spawnSync(process.execPath, [tsc, "-p", project], { cwd: project, encoding: "utf8" })
  return [...r.stdout.matchAll(/^(\S[^(]*)\(\d+,\d+\): error (TS\d+)/gm)].map((m) => `${m[1]}: ${m[2]}`)
}

describe.each([
  { install: "a normal install", noCompiler: false },
  { install: "an install with no compiler", noCompiler: true },
])("the packed tarball, after $install", ({ noCompiler }) => {
  let project: string
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    project = join(temp.path, noCompiler ? "no-compiler-app" : "app")
    await mkdir(project)
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true }))
    env = { ...process.env, ...(noCompiler ? { PATH: await noCompilerPath() } : {}) }
    delete env.DATAFORTS_NO_NATIVE
    const typesNode = `@types/node@${ours.devDependencies["@types/node"]}`
    const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball, typesNode], { cwd: project, env, encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
  }, 180_000)

  it("plain node imports dataforts and round-trips bytes on disk and between two nodes over NATS", async () => {
    await writeFile(join(project, "round-trip.mjs"), ROUND_TRIP)
    const r = spawnSync(process.execPath, ["round-trip.mjs"], { cwd: project, env: { ...env, NATS_URL: server.url }, encoding: "utf8", timeout: 60_000 })
    expect(r.stderr).toBe("")
    expect(r.stdout.trim()).toBe("round trip ok chunk 3145728")
  })

  it.each([
    ["7", "node16", "node16"],
    ["7", "esnext", "bundler"],
    ["5", "node16", "node16"],
    ["5", "esnext", "bundler"],
  ] as const)("TypeScript %s type-checks it under module %s / moduleResolution %s with strict and exactOptionalPropertyTypes, reporting nothing inside our .d.ts", async (ts, module, resolution) => {
    await writeFile(join(project, "typed.ts"), TYPED)
    await writeFile(join(project, "mistake.ts"), MISTAKE)
    await writeFile(join(project, "tsconfig.json"), tsconfig(module, resolution))
    const errors = typeErrors(TSC[ts], project)
    expect(errors.filter((e) => e.startsWith("node_modules/dataforts/"))).toEqual([])
    expect(errors.filter((e) => e.startsWith("typed.ts"))).toEqual([])
    // the check sees the user's own mistake (BlobRef is not a number)
    expect(errors).toContain("mistake.ts: TS2322")
  })

  it("npx net-blob --version prints the package's version", () => {
    const r = spawnSync("npx", ["--no-install", "net-blob", "--version"], { cwd: project, env, encoding: "utf8" })
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toContain(ours.version)
  })
})
