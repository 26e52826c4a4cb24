/**
 * Workspace transfer: one node stores a whole directory tree (`storeDir`) and publishes an
 * event carrying the tree's root ref; another node materializes the tree in its own folder
 * (`fetchDir`: atomic, modes, symlinks and empty directories kept).
 *
 *   NATS_URL=nats://127.0.0.1:4222 npx tsx examples/workspace.ts
 */
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { BlobRef, fetchDir, storeDir } from "../plugin/index.ts"
import { seededBytes } from "../test/support/bytes.ts"
import { examplePrefix, type ExampleNode, openNode } from "./artifact-ready.ts"

/** The event: a root ref (string form) and what the tree holds. */
export interface WorkspaceReady {
  jobId: string
  workspace: string
  files: number
  bytes: number
}

export const workspaceSubject = (prefix: string) => `jobs.${prefix}.workspace-ready`

/** A small but realistic workspace: sources, a script, an asset above the chunk size, a symlink, an empty folder. */
export async function generateWorkspace(root: string, seed = 7): Promise<void> {
  await mkdir(join(root, "src/components"), { recursive: true })
  await mkdir(join(root, "assets"), { recursive: true })
  await mkdir(join(root, "build/cache"), { recursive: true })
  await writeFile(join(root, "package.json"), JSON.stringify({ name: "workspace", version: `1.0.${seed}` }, null, 2))
  await writeFile(join(root, "README.md"), "# workspace\n")
  for (let i = 0; i < 40; i++) {
    await writeFile(join(root, "src/components", `c${i}.ts`), `export const c${i} = ${i * seed}\n${"// filler\n".repeat(i * 20)}`)
  }
  await writeFile(join(root, "src/index.ts"), "export * from './components/c0.ts'\n")
  await writeFile(join(root, "build.sh"), "#!/bin/sh\nnpm run build\n")
  await chmod(join(root, "build.sh"), 0o755)
  await writeFile(join(root, "assets/model.bin"), seededBytes(6 << 20, seed))
  await writeFile(join(root, "assets/empty.dat"), new Uint8Array(0))
  await symlink("src/index.ts", join(root, "main.ts"))
}

export interface WorkspaceOptions {
  natsUrl: string
  log?: (line: string) => void
  /** Where the source and the checkout go (kept); default a temp folder removed at the end. */
  workDir?: string
}

export interface WorkspaceSummary {
  ref: string
  source: string
  checkout: string
  files: number
  bytes: number
  ms: number
}

/** `builder` stores and announces a workspace; `runner` checks it out into its own folder. */
export async function runWorkspace({ natsUrl, log = () => {}, workDir }: WorkspaceOptions): Promise<WorkspaceSummary> {
  const prefix = examplePrefix()
  const base = workDir ?? (await mkdtemp(join(tmpdir(), "df-workspace-")))
  const source = join(base, "source")
  const checkout = join(base, "checkout")
  const nodes: ExampleNode[] = []
  try {
    await generateWorkspace(source)
    const builder = await openNode(natsUrl, "builder", prefix)
    nodes.push(builder)
    const runner = await openNode(natsUrl, "runner", prefix)
    nodes.push(runner)

    // the runner listens for workspaces before the builder announces one
    const sub = runner.nc.subscribe(workspaceSubject(prefix), { max: 1 })
    await runner.nc.flush()

    let counted = { files: 0, bytes: 0 }
    const ref = await storeDir(builder.blobs, source, { onProgress: (p) => (counted = { files: p.items ?? 0, bytes: p.bytes }) })
    const event: WorkspaceReady = { jobId: "build-1", workspace: ref.toString(), files: counted.files, bytes: counted.bytes }
    builder.nc.publish(workspaceSubject(prefix), JSON.stringify(event))
    log(`builder stored ${event.files} files (${event.bytes} bytes) as ${event.workspace}`)

    const timer = setTimeout(() => sub.unsubscribe(), 60_000)
    let got: WorkspaceReady | undefined
    for await (const msg of sub) got = msg.json<WorkspaceReady>()
    clearTimeout(timer)
    if (got === undefined) throw new Error("runner: no WorkspaceReady event arrived")
    const started = Date.now()
    await fetchDir(runner.blobs, BlobRef.parse(got.workspace), checkout)
    const ms = Date.now() - started
    log(`runner checked out ${got.files} files into ${checkout} in ${ms} ms`)
    return { ref: got.workspace, source, checkout, files: got.files, bytes: got.bytes, ms }
  } finally {
    for (const n of nodes.reverse()) await n.stop()
    if (workDir === undefined) await rm(base, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runWorkspace({ natsUrl: process.env.NATS_URL ?? "nats://127.0.0.1:4222", log: (l) => console.log(l) })
}
