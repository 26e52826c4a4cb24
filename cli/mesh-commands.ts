/**
 * net-mesh's commands (loaded by net-mesh.ts once the line is known to be well-formed: NATS and
 * the store come in here). Each run opens a session (a node of its own), runs one command, closes.
 */
import { stat } from "node:fs/promises"
import { EXIT, NoSuchFileError, reportError, watchBrokenPipe } from "./exit-codes.ts"
import { listHolders, listNodes } from "./mesh-info.ts"
import { openSession, type Session, type SessionOptions } from "./mesh-session.ts"
import { recvBlob, recvDir, sendBlob, sendDir, type TransferContext } from "./mesh-transfer.ts"

/** One checked command line. */
export interface MeshCommand {
  readonly cmd: string
  /** The command's argument (file, dir or ref; unused by `nodes`). */
  readonly arg: string
  readonly out: string | undefined
  readonly waitMs: number | undefined
  readonly json: boolean
  readonly quiet: boolean
  readonly session: SessionOptions
}

type Run = (s: Session, ctx: TransferContext & { waitMs: number }) => Promise<void>

function command(c: MeshCommand): Run {
  const { arg, out } = c
  switch (c.cmd) {
    case "transfer send-blob":
      return (s, ctx) => sendBlob(s, arg, ctx)
    case "transfer send-dir":
      return (s, ctx) => sendDir(s, arg, ctx)
    case "transfer recv-blob":
      return (s, ctx) => recvBlob(s, arg, out!, ctx)
    case "transfer recv-dir":
      return (s, ctx) => recvDir(s, arg, out!, ctx)
    case "nodes":
      return (s, ctx) => listNodes(s, ctx)
    case "holders":
      return (s, ctx) => listHolders(s, arg, ctx)
  }
  throw new Error(`no such command: ${c.cmd}`)
}

export async function runMeshCommand(c: MeshCommand): Promise<number> {
  const ctrl = new AbortController()
  const stop = () => ctrl.abort(new Error("interrupted"))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  const brokenPipe = watchBrokenPipe(stop)
  let session: Session | undefined
  try {
    const run = command(c)
    // a missing input is told apart from a missing blob, before anything connects
    if (c.cmd === "transfer send-blob" || c.cmd === "transfer send-dir") {
      await stat(c.arg).catch((err: NodeJS.ErrnoException) => {
        throw err.code === "ENOENT" ? new NoSuchFileError(c.arg, "no such input file") : err
      })
    }
    try {
      session = await openSession({ ...c.session, ...(c.waitMs === undefined ? {} : { discoveryMs: Math.max(c.waitMs, 1) }) })
    } catch (err) {
      if (isConnectError(err)) {
        const server = c.session.server ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222"
        process.stderr.write(`net-mesh: cannot reach NATS at ${server}: ${(err as Error).message}\n`)
        return EXIT.NO_SERVER
      }
      throw err
    }
    const json = c.json
    const print = (text: string, obj: unknown) => process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`)
    const ctx: TransferContext = { json, quiet: c.quiet, signal: ctrl.signal, print }
    await run(session, { ...ctx, waitMs: c.waitMs ?? 2500 })
    return EXIT.OK
  } catch (err) {
    if (brokenPipe()) return EXIT.OK
    return reportError(err, c.json, "net-mesh")
  } finally {
    process.off("SIGINT", stop)
    process.off("SIGTERM", stop)
    await session?.close()
  }
}

function isConnectError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string }
  return e?.name === "ConnectionError" || e?.code === "ECONNREFUSED" || /ECONNREFUSED|connection refused|CONNECTION_REFUSED/i.test(e?.message ?? "")
}
