/**
 * bench/local: put and get of a 1 GiB file beside the same run's limits — FastCDC alone,
 * BLAKE3 alone, FastCDC+BLAKE3 on one thread, sequential write and read of the same bytes —
 * round-robin, median of N; then peak RSS of put+read at 256 MiB and 2 GiB in child processes.
 */
import { createReadStream } from "node:fs"
import { mkdtemp, open, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Blobs } from "../plugin/index.ts"
import { FastCdc } from "../storage/format/fastcdc.ts"
import { defaultHashBackend } from "../storage/format/hasher.ts"
import { fillSeeded } from "../test/support/bytes.ts"
import { spawnTs } from "../test/support/child.ts"
import { ratio, report, roundRobin } from "./lib.ts"

const GIB = 1024 ** 3
const PIECE = 4 << 20

export async function runLocalBench(options: { sizeBytes?: number; reps?: number } = {}): Promise<void> {
  const size = options.sizeBytes ?? GIB
  const reps = options.reps ?? 3
  const tmp = await mkdtemp(join(tmpdir(), "df-bench-local-"))
  const file = join(tmp, "input.bin")
  const hasher = await defaultHashBackend()
  try {
    await writeSeededFile(file, size)
    let n = 0
    const tasks = {
      "disk write (4 MiB writes)": { bytes: size, run: () => writeSeededFile(join(tmp, "w.bin"), size, false) },
      "disk read (4 MiB reads)": { bytes: size, run: () => consume(file, () => {}) },
      "FastCDC alone": { bytes: size, run: () => { const c = new FastCdc(); return consume(file, (p) => void c.update(p)) } },
      "BLAKE3 alone": { bytes: size, run: () => { const h = hasher.create(); return consume(file, (p) => void h.update(p)) } },
      "FastCDC+BLAKE3 (one thread)": { bytes: size, run: () => cdcAndHash(file, hasher) },
      "put (Blobs.putFile)": {
        bytes: size,
        run: async () => {
          const dir = join(tmp, `store-${n++}`)
          const blobs = await Blobs.open({ dir, cacheBytes: 64 << 20 })
          await blobs.putFile(file)
          await blobs.close()
        },
      },
      "get, verified from disk (Blobs.read)": {
        bytes: size,
        run: async () => {
          const blobs = await Blobs.open({ dir: join(tmp, "store-0"), cacheBytes: 0 })
          const ref = (await listFirst(blobs))!
          let got = 0
          for await (const p of blobs.read(ref)) got += p.length
          await blobs.close()
          if (got !== size) throw new Error("short read")
        },
      },
    }
    const results = await roundRobin(tasks, reps)
    const m = (k: keyof typeof tasks) => results[k]!.mbps
    const put = m("put (Blobs.putFile)")
    const get = m("get, verified from disk (Blobs.read)")
    const rss = { "256 MiB": await peakRss(tmp, 256 << 20), "2 GiB": await peakRss(tmp, 2 * GIB) }
    report("local", {
      sizeBytes: size,
      reps,
      hashBackend: hasher.name,
      mbps: results,
      ratios: {
        "put / CDC+BLAKE3 limit (goal ≥ 0.8)": ratio(put, m("FastCDC+BLAKE3 (one thread)")),
        "get / min(BLAKE3, disk read) (goal ≥ 0.8)": ratio(get, Math.min(m("BLAKE3 alone"), m("disk read (4 MiB reads)"))),
      },
      peakRssMiB: rss,
    })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

async function listFirst(blobs: Blobs) {
  for await (const s of blobs.list()) return s.ref
  return undefined
}

async function writeSeededFile(path: string, size: number, seeded = true): Promise<void> {
  const fh = await open(path, "w")
  const block = new Uint8Array(PIECE)
  try {
    for (let off = 0, i = 0; off < size; off += PIECE, i++) {
      if (seeded || i === 0) fillSeeded(block, 1000 + i)
      const len = Math.min(PIECE, size - off)
      await fh.write(block, 0, len)
    }
  } finally {
    await fh.close()
  }
}

async function consume(path: string, onPiece: (p: Uint8Array) => void): Promise<void> {
  for await (const p of createReadStream(path, { highWaterMark: PIECE })) onPiece(p as Uint8Array)
}

async function cdcAndHash(path: string, hasher: Awaited<ReturnType<typeof defaultHashBackend>>): Promise<void> {
  const cdc = new FastCdc()
  let h = hasher.create()
  let open = 0 // bytes of the current chunk fed from earlier pieces
  await consume(path, (p) => {
    let off = 0
    for (const len of cdc.update(p)) {
      const take = len - open
      h.update(p.subarray(off, off + take)).digest()
      h = hasher.create()
      off += take
      open = 0
    }
    h.update(p.subarray(off))
    open += p.length - off
  })
  h.digest()
}

async function peakRss(tmp: string, size: number): Promise<number> {
  const child = spawnTs("child-store.ts", ["putget", join(tmp, `rss-${size}`), String(size), "5"])
  const line = await child.line((l) => l.startsWith("{"), 600_000)
  await child.exited
  return Math.round((JSON.parse(line) as { maxRssMiB: number }).maxRssMiB)
}
