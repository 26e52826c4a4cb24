import { readFileSync, unlinkSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { ClassicLevel } from "classic-level"
import * as Schema from "effect/Schema"
import { StorageError, StoreLockedError } from "./format/errors.ts"
import type { BlobCommit, BlobIndex, BlobMeta } from "./blob-index.ts"
import { bytesReader, type ChunkStore } from "./chunk-store.ts"

/** Persisted records are decoded at the boundary: a damaged record is an error, not a crash later. */
const MetaSchema = Schema.Struct({
  kind: Schema.Literals(["chunk", "manifest", "dir"]),
  size: Schema.Number,
  tags: Schema.Record(Schema.String, Schema.String),
  created: Schema.Number,
  lastRead: Schema.Number,
  chunks: Schema.Number,
  // true: stored only as part of a tree (local-store.ts, StoredMeta); absent in older records
  child: Schema.optional(Schema.Boolean),
})
const decodeMeta = Schema.decodeUnknownSync(MetaSchema)

type Db = ClassicLevel<string, Uint8Array>

/**
 * The LevelDB index (classic-level). Keys are prefixed strings: `b!<hex>` blob records
 * (JSON), `m!<hex>` manifests (bytes), `r!<hex>` chunk refcounts (decimal), `c!<hex>`
 * small chunks (see `smallChunks`), `s!open` the open marker. Mutations are single batches
 * (atomic in LevelDB's log).
 */
export class LevelBlobIndex implements BlobIndex {
  private constructor(
    private readonly db: Db,
    private readonly pidFile: string,
  ) {}

  /**
   * Opens (or creates) the index. LevelDB's LOCK makes one process at a time the owner; the
   * owner writes its pid to `<location>.pid` (removed on close), so a second process is told
   * who holds the store (StoreLockedError) instead of a bare storage failure.
   */
  static async open(location: string): Promise<LevelBlobIndex> {
    const db: Db = new ClassicLevel<string, Uint8Array>(location, { keyEncoding: "utf8", valueEncoding: "view" })
    const pidFile = `${location}.pid`
    try {
      await db.open()
    } catch (err) {
      if ((err as { cause?: { code?: string } })?.cause?.code === "LEVEL_LOCKED") throw new StoreLockedError(dirname(location), holderPid(pidFile), { cause: err })
      throw new StorageError("index open", { cause: err })
    }
    try {
      writeFileSync(pidFile, `${process.pid}\n`)
    } catch {
      // informational only (a read-only folder still opens)
    }
    return new LevelBlobIndex(db, pidFile)
  }

  /** Small chunks kept in this database (`c!<hex>`): one put instead of a file per chunk. */
  smallChunks(): ChunkStore {
    const db = this.db
    const view = (v: Uint8Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    const get = async (hex: string) => {
      const v = this.#getSync(`c!${hex}`)
      return v === undefined ? undefined : view(v)
    }
    return {
      has: async (hex) => this.#getSync(`c!${hex}`) !== undefined,
      read: get,
      lengthOf: async (hex) => (await get(hex))?.length,
      openRange: async (hex) => {
        const v = await get(hex)
        return v === undefined ? undefined : bytesReader(v)
      },
      write: async (hex, bytes) => {
        if (this.#getSync(`c!${hex}`) !== undefined) return false
        try {
          await db.put(`c!${hex}`, bytes)
        } catch (err) {
          throw new StorageError("write", { cause: err })
        }
        return true
      },
      remove: async (hex) => db.del(`c!${hex}`),
      list: async function* () {
        for await (const k of db.keys({ gte: "c!", lt: "c\"" })) yield k.slice(2)
      },
      sync: () => this.sync(),
      bytes: async () => {
        let n = 0
        for await (const v of db.values({ gte: "c!", lt: "c\"" })) n += v.length
        return n
      },
      close: async () => {},
    }
  }

  async getMeta(hex: string): Promise<BlobMeta | undefined> {
    const v = await this.#get(`b!${hex}`)
    return v === undefined ? undefined : { ...decodeMeta(JSON.parse(text(v))) }
  }

  async getManifest(hex: string): Promise<Uint8Array | undefined> {
    const v = await this.#get(`m!${hex}`)
    // classic-level hands back a Buffer; expose a plain Uint8Array view (no copy)
    return v === undefined ? undefined : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  }

  async refcounts(hexes: readonly string[]): Promise<number[]> {
    return hexes.map((h) => {
      const v = this.#getSync(`r!${h}`)
      return v === undefined ? 0 : Number(text(v))
    })
  }

  async commit(hex: string, meta: BlobMeta, manifest: Uint8Array | undefined, chunks: readonly string[]): Promise<void> {
    await this.commitMany([{ hex, meta, manifest, chunks }])
  }

  async commitMany(items: readonly BlobCommit[]): Promise<void> {
    // increments summed over the group: two blobs of one batch may share chunks
    const increments = new Map<string, number>()
    for (const item of items) for (const c of new Set(item.chunks)) increments.set(c, (increments.get(c) ?? 0) + 1)
    const distinct = [...increments.keys()]
    const counts = await this.refcounts(distinct)
    const batch = this.db.batch()
    for (const { hex, meta, manifest, inline } of items) {
      batch.put(`b!${hex}`, utf8(JSON.stringify(meta)))
      if (manifest) batch.put(`m!${hex}`, manifest)
      if (inline) batch.put(`c!${inline.hex}`, inline.bytes)
    }
    distinct.forEach((c, i) => batch.put(`r!${c}`, utf8(String(counts[i]! + increments.get(c)!))))
    await this.#write(batch)
  }

  readonly inlinesChunks = true

  async touchMany(times: ReadonlyMap<string, number>): Promise<void> {
    const batch = this.db.batch()
    for (const [hex, t] of times) {
      const meta = await this.getMeta(hex)
      if (meta) batch.put(`b!${hex}`, utf8(JSON.stringify({ ...meta, lastRead: t })))
    }
    if (batch.length > 0) await this.#write(batch)
    else await batch.close()
  }

  async setMeta(hex: string, meta: BlobMeta): Promise<void> {
    await this.db.put(`b!${hex}`, utf8(JSON.stringify(meta)))
  }

  async remove(hex: string, chunks: readonly string[]): Promise<string[]> {
    if ((await this.#get(`b!${hex}`)) === undefined) return []
    const distinct = [...new Set(chunks)]
    const counts = await this.refcounts(distinct)
    const batch = this.db.batch()
    batch.del(`b!${hex}`)
    batch.del(`m!${hex}`)
    const freed: string[] = []
    distinct.forEach((c, i) => {
      const n = counts[i]! - 1
      if (n <= 0) {
        batch.del(`r!${c}`)
        freed.push(c)
      } else batch.put(`r!${c}`, utf8(String(n)))
    })
    await this.#write(batch)
    return freed
  }

  async *entries(): AsyncIterable<[string, BlobMeta]> {
    for await (const [k, v] of this.db.iterator({ gte: "b!", lt: "b\"" })) {
      yield [k.slice(2), { ...decodeMeta(JSON.parse(text(v))) }]
    }
  }

  async markOpen(): Promise<boolean> {
    const wasOpen = (await this.#get("s!open")) !== undefined
    await this.db.put("s!open", utf8("1"), { sync: true })
    return wasOpen
  }

  async markClean(): Promise<void> {
    await this.db.del("s!open", { sync: true })
  }

  async sync(): Promise<void> {
    // a synced write flushes LevelDB's log, and with it every earlier write
    await this.db.put("s!sync", utf8(String(Date.now())), { sync: true })
  }

  async close(): Promise<void> {
    // the pid file goes first: once the LOCK is released another process may write its own
    if (holderPid(this.pidFile) === process.pid) {
      try {
        unlinkSync(this.pidFile)
      } catch {}
    }
    await this.db.close()
  }

  async #get(key: string): Promise<Uint8Array | undefined> {
    return this.#getSync(key)
  }

  /** Point reads are synchronous: LevelDB answers from its caches without a threadpool hop. */
  #getSync(key: string): Uint8Array | undefined {
    try {
      return this.db.getSync(key)
    } catch (err) {
      throw new StorageError("index get", { cause: err })
    }
  }

  async #write(batch: ReturnType<Db["batch"]>): Promise<void> {
    try {
      await batch.write()
    } catch (err) {
      throw new StorageError("index write", { cause: err })
    }
  }
}

/** The pid in a store's pid file, when the file is there and that process is alive. */
function holderPid(pidFile: string): number | undefined {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(pidFile, "utf8"), 10)
  } catch {
    return undefined
  }
  if (!(pid > 0)) return undefined
  try {
    process.kill(pid, 0)
    return pid
  } catch (err) {
    // EPERM: alive, but another user's
    return (err as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined
  }
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const utf8 = (s: string) => enc.encode(s)
const text = (b: Uint8Array) => dec.decode(b)
