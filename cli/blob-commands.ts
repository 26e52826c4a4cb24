/**
 * net-blob's commands (loaded by net-blob.ts once the line is known to be well-formed: this is
 * where the store, and with it classic-level and Effect, comes in).
 */
import { stat as fsStat } from "node:fs/promises"
import { dirname } from "node:path"
import { Blobs, BlobRef, type BlobStat, fetchDir, storeDir } from "../plugin/index.ts"
import { EXIT, NoSuchFileError, UsageError, watchBrokenPipe } from "./exit-codes.ts"
import { formatBytes, ProgressBar } from "./progress-bar.ts"

/** One checked command line. */
export interface BlobCommand {
  readonly cmd: string
  readonly arg: string | undefined
  readonly dir: string
  readonly out: string | undefined
  /** put: tags to store; ls: tags every listed blob must carry. */
  readonly tags: Readonly<Record<string, string>>
  readonly all: boolean
  readonly json: boolean
  readonly quiet: boolean
}

export async function runBlobCommand(c: BlobCommand): Promise<number> {
  // a missing input is told apart from a missing blob, before any store is opened (or made)
  const input = c.cmd === "put" && c.arg !== "-" ? await statInput(c.arg!, "no such input file") : undefined
  // the same for the folder a file goes to (a tree's folder is made: fetchDir creates parents)
  if (c.cmd === "get" && c.out !== undefined && BlobRef.parse(c.arg!).kind !== "dir") await statInput(dirname(c.out), "no such folder for --out")
  // a CLI process exists to move bytes: it opts in to holding freed memory (plugin/allocator.ts)
  const blobs = await Blobs.open({ dir: c.dir, tuneMalloc: true })
  const ctrl = new AbortController()
  const stop = () => ctrl.abort(new Error("interrupted"))
  process.once("SIGINT", stop)
  const brokenPipe = watchBrokenPipe(() => ctrl.abort(new Error("stdout closed")))
  try {
    return await run(blobs, c, input, ctrl.signal)
  } catch (err) {
    if (brokenPipe()) return EXIT.OK
    throw err
  } finally {
    process.off("SIGINT", stop)
    await blobs.close()
  }
}

async function statInput(path: string, what: string): Promise<{ isDirectory(): boolean }> {
  try {
    return await fsStat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NoSuchFileError(path, what)
    throw err
  }
}

async function run(blobs: Blobs, c: BlobCommand, input: { isDirectory(): boolean } | undefined, signal: AbortSignal): Promise<number> {
  const print = (text: string, obj: unknown) => {
    // after a broken pipe nothing more is written (the command is being stopped)
    if (!signal.aborted) process.stdout.write(c.json ? `${JSON.stringify(obj)}\n` : `${text}\n`)
  }
  const tags = Object.keys(c.tags).length > 0 ? { tags: { ...c.tags } } : {}
  switch (c.cmd) {
    case "put": {
      const bar = new ProgressBar("put", process.stderr, { quiet: c.quiet || c.json })
      let ref: BlobRef
      if (input === undefined) ref = await blobs.put(process.stdin, { signal, onProgress: bar.update, ...tags })
      else if (input.isDirectory()) ref = await storeDir(blobs, c.arg!, { signal, onProgress: bar.update, ...tags })
      else ref = await blobs.putFile(c.arg!, { signal, onProgress: bar.update, ...tags })
      bar.finish(ref.kind === "dir" ? undefined : { bytes: ref.size, totalBytes: ref.size })
      print(ref.toString(), { ref: ref.toString(), size: ref.size, kind: ref.kind, tags: c.tags })
      return EXIT.OK
    }
    case "get": {
      const ref = BlobRef.parse(c.arg!)
      const bar = new ProgressBar("get", process.stderr, { quiet: c.quiet || c.json || !c.out })
      if (ref.kind === "dir") {
        if (!c.out) throw new UsageError("a directory ref needs --out <dir>", "net-blob help get")
        await fetchDir(blobs, ref, c.out, { signal, onProgress: bar.update })
      } else if (c.out) {
        await blobs.getToFile(ref, c.out, { signal, onProgress: bar.update })
      } else {
        for await (const part of blobs.read(ref, { signal })) {
          if (!process.stdout.write(part)) await drained(signal)
        }
        return EXIT.OK
      }
      bar.finish(ref.kind === "dir" ? undefined : { bytes: ref.size, totalBytes: ref.size })
      if (c.json) print("", { ref: ref.toString(), out: c.out })
      return EXIT.OK
    }
    case "stat": {
      const s = await blobs.stat(c.arg!)
      print(describe(s), statJson(s))
      return EXIT.OK
    }
    case "ls": {
      const want = Object.entries(c.tags)
      const first = want[0]
      const rows: string[][] = []
      const now = Date.now()
      for await (const s of blobs.list(first ? { tag: `${first[0]}=${first[1]}` } : {})) {
        if (signal.aborted) break
        if (!want.every(([k, v]) => s.tags[k] === v)) continue
        if (s.child && !c.all) continue
        if (c.json) print("", statJson(s))
        else rows.push([s.ref.toString(), formatBytes(s.size), s.kind, tagText(s.tags), age(now - s.created)])
      }
      if (!c.json) printColumns(rows, [false, true, false, false, true])
      return EXIT.OK
    }
    case "rm": {
      const removed = await blobs.delete(c.arg!)
      if (!removed) {
        process.stderr.write(c.json ? `${JSON.stringify({ error: "NOT_FOUND", message: "not held here" })}\n` : `net-blob: error (NOT_FOUND): not held here: ${c.arg}\n`)
        return EXIT.NOT_FOUND
      }
      print("removed", { removed: true })
      return EXIT.OK
    }
  }
  throw new UsageError(`unknown command '${c.cmd}'`)
}

/** Resolves when stdout drains, or when the command is stopped (a closed pipe never drains). */
function drained(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.stdout.off("drain", done)
      signal.removeEventListener("abort", done)
      resolve()
    }
    process.stdout.once("drain", done)
    signal.addEventListener("abort", done, { once: true })
  })
}

const tagText = (tags: Readonly<Record<string, string>>) => Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(",") || "-"

/** 42s, 5m, 3h, 12d. */
function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

/** Rows as aligned columns (`right`: right-aligned), two spaces apart. */
function printColumns(rows: string[][], right: boolean[]): void {
  if (rows.length === 0) return
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const last = widths.length - 1
  const text = rows.map((r) => r.map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : i === last ? cell : cell.padEnd(widths[i]!))).join("  "))
  process.stdout.write(`${text.join("\n")}\n`)
}

function statJson(s: BlobStat) {
  return {
    ref: s.ref.toString(),
    kind: s.kind,
    size: s.size,
    chunks: s.chunks,
    tags: s.tags,
    child: s.child === true,
    created: new Date(s.created).toISOString(),
    lastRead: s.lastRead ? new Date(s.lastRead).toISOString() : null,
  }
}

function describe(s: BlobStat): string {
  const j = statJson(s)
  return Object.entries(j)
    .map(([k, v]) => `${k.padEnd(8)} ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("\n")
}
