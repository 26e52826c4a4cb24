import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

export interface NatsServerHandle {
  readonly url: string
  readonly pid: number
  /** The cluster (route) URL when started with `cluster`. */
  readonly clusterUrl?: string
  stop(): Promise<void>
}

export interface NatsServerOptions {
  jetstream?: boolean
  /** Join a cluster: listen for routes on an OS-assigned port and dial these routes. */
  cluster?: { name: string; routes?: string[] }
  timeoutMs?: number
  /** Listen on this client port instead of an OS-assigned one (a restart on the same port). */
  port?: number
  /**
   * Extra nats-server config text (users and permissions, tls, max_payload…), written to a
   * file in the server's temp dir and passed with `-c`; command-line flags still win.
   */
  config?: string
}

/**
 * Starts a real `nats-server` on 127.0.0.1 with an OS-assigned port (`-p -1`), read back
 * from the ports file it writes, so there is no port race. `NATS_SERVER_BIN` overrides
 * the binary. Used by tests, the demo and the benchmarks.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  // the picked cluster port can be handed to the client listener (-p -1) in the meantime:
  // the server then exits with "address already in use"; pick again
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts)
    } catch (err) {
      if (!opts.cluster || attempt >= 4 || !String((err as Error).message).includes("address already in use")) throw err
    }
  }
}

async function startOnce(opts: NatsServerOptions): Promise<NatsServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), "df-nats-"))
  const args = ["-a", "127.0.0.1", "-p", String(opts.port ?? -1), "--ports_file_dir", dir]
  if (opts.config !== undefined) {
    const file = join(dir, "server.conf")
    await writeFile(file, opts.config)
    args.push("-c", file)
  }
  if (opts.jetstream) args.push("-js", "-sd", join(dir, "js"))
  let clusterPort: number | undefined
  if (opts.cluster) {
    // nats-server 2.9 cannot pick a random cluster port and report it, so pick a free one
    clusterPort = await freePort()
    args.push("--cluster_name", opts.cluster.name, "--cluster", `nats://127.0.0.1:${clusterPort}`)
    if (opts.cluster.routes?.length) args.push("--routes", opts.cluster.routes.join(","))
  }
  const proc = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", args, { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  proc.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b).slice(-4096)))
  const exited = new Promise<number | null>((resolve) => proc.once("exit", resolve))
  const spawnFailed = new Promise<never>((_, reject) => proc.once("error", reject))
  try {
    const url = await Promise.race([
      readPortsFile(dir, proc, opts.timeoutMs ?? 10_000),
      spawnFailed,
      exited.then((code) => {
        throw new Error(`nats-server exited early (code ${code}):\n${stderr}`)
      }),
    ])
    return {
      url,
      pid: proc.pid!,
      ...(clusterPort === undefined ? {} : { clusterUrl: `nats://127.0.0.1:${clusterPort}` }),
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM")
        await exited
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    proc.kill("SIGKILL")
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

async function readPortsFile(dir: string, proc: ChildProcess, timeoutMs: number): Promise<string> {
  const file = join(dir, `nats-server_${proc.pid}.ports`)
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const ports = JSON.parse(await readFile(file, "utf8")) as { nats?: string[] }
      if (ports.nats?.[0]) return ports.nats[0]
    } catch {
      // not written yet
    }
    await sleep(20)
  }
  throw new Error(`nats-server did not write ${file} within ${timeoutMs}ms`)
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net")
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}
