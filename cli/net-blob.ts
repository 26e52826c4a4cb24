#!/usr/bin/env -S node --no-incremental-marking
// --no-incremental-marking: a streaming process with a small heap otherwise falls into back-to-back
// mark-compacts (V8's soft-limit start); see docs/PERFORMANCE.md, "Hosting a node".
/**
 * net-blob: the node-local store from the shell.
 *   net-blob put <file|dir|->         store bytes (stdin with -), print the ref
 *   net-blob get <ref> [--out path]   write the bytes (stdout by default)
 *   net-blob stat <ref>               what this node knows about a blob
 *   net-blob ls [--tag k=v]           blobs held here
 *   net-blob rm <ref>                 forget a blob (operator action)
 * The store comes from --dir or DATAFORTS_DIR. --json prints machine-readable output.
 */
import { stat as fsStat } from "node:fs/promises"
import { parseArgs } from "node:util"
import { Blobs, BlobRef, type BlobStat, fetchDir, storeDir } from "../plugin/index.ts"
import { EXIT, reportError, UsageError } from "./exit-codes.ts"
import { ProgressBar } from "./progress-bar.ts"

const USAGE = "net-blob <put <file|dir|->|get <ref> [--out path]|stat <ref>|ls [--tag k=v]|rm <ref>> [--dir path] [--json] [--quiet]"

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string" },
      out: { type: "string", short: "o" },
      tag: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", short: "q", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  })
  const json = values.json ?? false
  try {
    if (values.help || positionals.length === 0) {
      process.stdout.write(`${USAGE}\n`)
      return values.help ? EXIT.OK : EXIT.USAGE
    }
    const dir = values.dir ?? process.env.DATAFORTS_DIR
    if (!dir) throw new UsageError(`no store: pass --dir or set DATAFORTS_DIR\n${USAGE}`)
    const [cmd, arg] = positionals
    const blobs = await Blobs.open({ dir })
    try {
      return await run(blobs, cmd!, arg, { ...values, json })
    } finally {
      await blobs.close()
    }
  } catch (err) {
    return reportError(err, json)
  }
}

interface Flags {
  out?: string
  tag?: string[]
  json: boolean
  quiet?: boolean
}

async function run(blobs: Blobs, cmd: string, arg: string | undefined, flags: Flags): Promise<number> {
  const ctrl = new AbortController()
  process.once("SIGINT", () => ctrl.abort())
  const signal = ctrl.signal
  const print = (text: string, obj: unknown) => process.stdout.write(flags.json ? `${JSON.stringify(obj)}\n` : `${text}\n`)
  switch (cmd) {
    case "put": {
      if (!arg) throw new UsageError("net-blob put <file|dir|->")
      const bar = new ProgressBar("put", process.stderr, { quiet: flags.quiet || flags.json })
      let ref: BlobRef
      if (arg === "-") {
        ref = await blobs.put(process.stdin, { signal, onProgress: bar.update })
      } else {
        const st = await fsStat(arg)
        if (st.isDirectory()) {
          ref = await storeDir(blobs, arg, { signal, onProgress: bar.update })
        } else {
          ref = await blobs.putFile(arg, { signal, onProgress: bar.update })
        }
      }
      bar.finish(ref.kind === "dir" ? undefined : { bytes: ref.size, totalBytes: ref.size })
      print(ref.toString(), { ref: ref.toString(), size: ref.size, kind: ref.kind })
      return EXIT.OK
    }
    case "get": {
      const ref = BlobRef.parse(requireArg(arg, "get <ref>"))
      const bar = new ProgressBar("get", process.stderr, { quiet: flags.quiet || flags.json || !flags.out })
      if (ref.kind === "dir") {
        if (!flags.out) throw new UsageError("a directory ref needs --out <dir>")
        await fetchDir(blobs, ref, flags.out, { signal, onProgress: bar.update })
      } else if (flags.out) {
        await blobs.getToFile(ref, flags.out, { signal, onProgress: bar.update })
      } else {
        for await (const part of blobs.read(ref, { signal })) {
          if (!process.stdout.write(part)) await new Promise((r) => process.stdout.once("drain", r))
        }
        return EXIT.OK
      }
      bar.finish(ref.kind === "dir" ? undefined : { bytes: ref.size, totalBytes: ref.size })
      if (flags.json) print("", { ref: ref.toString(), out: flags.out })
      return EXIT.OK
    }
    case "stat": {
      const s = await blobs.stat(requireArg(arg, "stat <ref>"))
      print(describe(s), statJson(s))
      return EXIT.OK
    }
    case "ls": {
      const tags = flags.tag ?? []
      for await (const s of blobs.list(tags.length ? { tag: tags[0]! } : {})) {
        if (!tags.every((t) => s.tags[t.split("=")[0]!] === t.slice(t.indexOf("=") + 1))) continue
        print(`${s.ref}\t${Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(",")}`, statJson(s))
      }
      return EXIT.OK
    }
    case "rm": {
      const removed = await blobs.delete(requireArg(arg, "rm <ref>"))
      if (!removed) {
        process.stderr.write("error (NOT_FOUND): not held here\n")
        return EXIT.NOT_FOUND
      }
      print("removed", { removed: true })
      return EXIT.OK
    }
    default:
      throw new UsageError(USAGE)
  }
}

function requireArg(arg: string | undefined, usage: string): string {
  if (!arg) throw new UsageError(`net-blob ${usage}`)
  return arg
}

function statJson(s: BlobStat) {
  return { ref: s.ref.toString(), kind: s.kind, size: s.size, chunks: s.chunks, tags: s.tags, created: new Date(s.created).toISOString(), lastRead: s.lastRead ? new Date(s.lastRead).toISOString() : null }
}

function describe(s: BlobStat): string {
  const j = statJson(s)
  return Object.entries(j).map(([k, v]) => `${k.padEnd(8)} ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n")
}

process.exitCode = await main(process.argv.slice(2))
