/**
 * bench/dir: storeDir and fetchDir of 12,430 files totalling ~27 MiB (the seed's workspace
 * shape) between two nodes over loopback NATS, beside `tar c | tar x` through a pipe of the
 * same tree in the same run. The holder (storeDir) runs in its own process, the reader
 * (fetchDir) in this one. Files/s and MB/s; goal fetchDir ≥ 5,000 files/s.
 *
 * Outputs are kept until the end of the run: on a filesystem that avoids reusing recently
 * freed inodes (ext4 without a journal scans them on every create for 1–6 minutes), deleting
 * 12k files between repetitions made the next repetition's creates ~10× slower, tar's too.
 * `BENCH_DIR_ROOT` puts the trees elsewhere (e.g. /dev/shm, to see the software alone).
 */
import { spawn } from "node:child_process"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { Blobs, BlobRef, fetchDir } from "../plugin/index.ts"
import { fillSeeded } from "../test/support/bytes.ts"
import { spawnTs } from "../test/support/child.ts"
import { startNatsServer } from "../test/support/nats-server.ts"
import { median, report, timed } from "./lib.ts"

export async function makeWorkspace(root: string, files = 12_430, totalBytes = 27 << 20): Promise<number> {
  const avg = Math.floor(totalBytes / files)
  let written = 0
  let seed = 1
  const made = new Set<string>()
  for (let i = 0; i < files; i++) {
    // ~20 files per folder (≈620 folders for the full shape), three levels deep
    const f = Math.floor(i / 20)
    const dir = join(root, `pkg${f % 16}`, `mod${Math.floor(f / 16) % 8}`, `d${Math.floor(f / 128)}`)
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true })
      made.add(dir)
    }
    const size = Math.max(1, Math.floor(avg * (0.25 + ((i * 7919) % 1000) / 666)))
    const bytes = new Uint8Array(size)
    fillSeeded(bytes, seed++)
    await writeFile(join(dir, `f${i}.txt`), bytes)
    written += size
  }
  return written
}

function sh(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", cmd], { stdio: "ignore" })
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))))
  })
}

export async function runDirBench(options: { files?: number; bytes?: number; reps?: number } = {}): Promise<void> {
  const files = options.files ?? 12_430
  const reps = options.reps ?? 3
  const tmp = await mkdtemp(join(process.env.BENCH_DIR_ROOT ?? tmpdir(), "df-bench-dir-"))
  const server = await startNatsServer()
  try {
    const src = join(tmp, "src")
    const bytes = await makeWorkspace(src, files, options.bytes ?? 27 << 20)
    const runs = { storeDir: [] as number[], fetchDir: [] as number[], tarPipe: [] as number[] }
    for (let r = 0; r < reps; r++) {
      const prefix = `bdir${r}${Date.now()}`
      // the holder runs in its own process (storeDir there), the reader here: two nodes, two cores
      const holder = spawnTs("../../bench/workers/dir-holder.ts", [server.url, prefix, join(tmp, `a${r}`), src])
      try {
        const [, refText, storeMs] = (await holder.line((l) => l.startsWith("ref "), 600_000)).split(" ")
        runs.storeDir.push(Number(storeMs))
        const ncb = await connect({ servers: server.url })
        const b = await Blobs.open({ dir: join(tmp, `b${r}`), nats: ncb, node: "reader", prefix })
        const root = BlobRef.parse(refText)
        const deadline = Date.now() + 10_000
        while (b.mesh!.folds.nearestHolders(root.hex).length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
        runs.fetchDir.push(await timed(() => fetchDir(b, root, join(tmp, `out${r}`))))
        await b.close()
        await ncb.close()
      } finally {
        holder.proc.kill("SIGKILL")
        await holder.exited
      }
      runs.tarPipe.push(await timed(() => sh(`mkdir -p ${tmp}/tar${r} && tar -C ${src} -cf - . | tar -C ${tmp}/tar${r} -xf -`)))
    }
    const rate = (ms: number[]) => {
      const t = median(ms)
      return { ms: Math.round(t), filesPerSec: Math.round(files / (t / 1000)), mbps: Number((bytes / 1e6 / (t / 1000)).toFixed(1)), runsMs: ms.map(Math.round) }
    }
    const result = { files, bytes, reps, root: process.env.BENCH_DIR_ROOT ?? tmpdir(), storeDir: rate(runs.storeDir), fetchDir: rate(runs.fetchDir), tarPipe: rate(runs.tarPipe) }
    report("dir", {
      ...result,
      ratios: {
        "fetchDir files/s (goal ≥ 5000)": result.fetchDir.filesPerSec,
        "fetchDir / tar pipe": Number((median(runs.tarPipe) / median(runs.fetchDir)).toFixed(2)),
        "storeDir / tar pipe": Number((median(runs.tarPipe) / median(runs.storeDir)).toFixed(2)),
      },
    })
  } finally {
    await server.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}
