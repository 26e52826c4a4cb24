#!/usr/bin/env -S node --no-incremental-marking
// --no-incremental-marking: a streaming process with a small heap otherwise falls into back-to-back
// mark-compacts (V8's soft-limit start); see docs/PERFORMANCE.md, "Hosting a node".
/**
 * net-mesh: move blobs and trees between nodes over NATS, and look at the mesh.
 *   net-mesh transfer send-blob <file>              put, print the ref, serve until Ctrl-C
 *   net-mesh transfer recv-blob <ref> --out <file>  fetch with a progress bar; print the sources
 *   net-mesh transfer send-dir <dir>                the same for a directory tree
 *   net-mesh transfer recv-dir <ref> --out <dir>
 *   net-mesh nodes                                  live nodes with zone and RTT
 *   net-mesh holders <ref>                          nodes holding a ref, nearest first
 * Options: --server (NATS_URL, default nats://127.0.0.1:4222), --node (default
 * <hostname>-<pid>), --dir (DATAFORTS_DIR, default a temp store removed on exit), --prefix,
 * --zone, --wait <ms>, --json, --quiet. Exit codes as net-blob (cli/exit-codes.ts), and 16
 * when the NATS server cannot be reached.
 */
import { parseArgs } from "node:util"
import { EXIT, reportError, UsageError } from "./exit-codes.ts"
import { listHolders, listNodes } from "./mesh-info.ts"
import { openSession, type Session } from "./mesh-session.ts"
import { recvBlob, recvDir, sendBlob, sendDir, type TransferContext } from "./mesh-transfer.ts"

const USAGE = `net-mesh transfer <send-blob <file>|recv-blob <ref> --out <file>|send-dir <dir>|recv-dir <ref> --out <dir>>
net-mesh nodes | net-mesh holders <ref>
  [--server url] [--node id] [--dir path] [--prefix p] [--zone z] [--wait ms] [--json] [--quiet]`

/** The NATS server could not be reached (not one of the store's error codes). */
export const EXIT_NO_SERVER = 16

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: "string", short: "s" },
      node: { type: "string" },
      dir: { type: "string" },
      prefix: { type: "string" },
      zone: { type: "string" },
      out: { type: "string", short: "o" },
      wait: { type: "string" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", short: "q", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  })
  const json = values.json ?? false
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`)
    return values.help ? EXIT.OK : EXIT.USAGE
  }
  const ctrl = new AbortController()
  const stop = () => ctrl.abort(new Error("interrupted"))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  let session: Session | undefined
  try {
    const [group, cmd, arg] = positionals[0] === "transfer" ? positionals : [undefined, ...positionals]
    const waitMs = values.wait === undefined ? undefined : Number(values.wait)
    if (waitMs !== undefined && !(waitMs >= 0)) throw new UsageError("--wait takes milliseconds")
    const run = command(group, cmd, arg, values.out)
    try {
      session = await openSession({ ...values, ...(waitMs === undefined ? {} : { discoveryMs: Math.max(waitMs, 1) }) })
    } catch (err) {
      if (isConnectError(err)) {
        process.stderr.write(`error: cannot reach NATS at ${values.server ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222"}: ${(err as Error).message}\n`)
        return EXIT_NO_SERVER
      }
      throw err
    }
    const print = (text: string, obj: unknown) => process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`)
    const ctx: TransferContext = { json, quiet: values.quiet ?? false, signal: ctrl.signal, print }
    await run(session, { ...ctx, waitMs: waitMs ?? 2500 })
    return EXIT.OK
  } catch (err) {
    return reportError(err, json)
  } finally {
    process.off("SIGINT", stop)
    process.off("SIGTERM", stop)
    await session?.close()
  }
}

type Run = (s: Session, ctx: TransferContext & { waitMs: number }) => Promise<void>

/** Checks the command line before anything connects, so usage errors exit fast. */
function command(group: string | undefined, cmd: string | undefined, arg: string | undefined, out: string | undefined): Run {
  const need = (v: string | undefined, usage: string): string => {
    if (!v) throw new UsageError(`net-mesh ${usage}`)
    return v
  }
  if (group === "transfer") {
    switch (cmd) {
      case "send-blob": {
        const file = need(arg, "transfer send-blob <file>")
        return (s, ctx) => sendBlob(s, file, ctx)
      }
      case "send-dir": {
        const dir = need(arg, "transfer send-dir <dir>")
        return (s, ctx) => sendDir(s, dir, ctx)
      }
      case "recv-blob": {
        const ref = need(arg, "transfer recv-blob <ref> --out <file>")
        const file = need(out, "transfer recv-blob <ref> --out <file>")
        return (s, ctx) => recvBlob(s, ref, file, ctx)
      }
      case "recv-dir": {
        const ref = need(arg, "transfer recv-dir <ref> --out <dir>")
        const dir = need(out, "transfer recv-dir <ref> --out <dir>")
        return (s, ctx) => recvDir(s, ref, dir, ctx)
      }
    }
  } else if (cmd === "nodes") {
    return (s, ctx) => listNodes(s, ctx)
  } else if (cmd === "holders") {
    const ref = need(arg, "holders <ref>")
    return (s, ctx) => listHolders(s, ref, ctx)
  }
  throw new UsageError(USAGE)
}

function isConnectError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string }
  return e?.name === "ConnectionError" || e?.code === "ECONNREFUSED" || /ECONNREFUSED|connection refused|CONNECTION_REFUSED/i.test(e?.message ?? "")
}

process.exitCode = await main(process.argv.slice(2))
