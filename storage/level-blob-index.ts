import { ClassicLevel } from "classic-level"
import { Schema } from "effect"
import { StorageError } from "./format/errors.ts"
import type { BlobIndex, BlobMeta } from "./blob-index.ts"

/** Persisted records are decoded at the boundary: a damaged record is an error, not a crash later. */
const MetaSchema = Schema.Struct({
  kind: Schema.Literals(["chunk", "manifest", "dir"]),
  size: Schema.Number,
  tags: Schema.Record(Schema.String, Schema.String),
  created: Schema.Number,
  lastRead: Schema.Number,
  chunks: Schema.Number,
})
const decodeMeta = Schema.decodeUnknownSync(MetaSchema)

type Db = ClassicLevel<string, Uint8Array>

/**
 * The LevelDB index (classic-level). Keys are prefixed strings: `b!<hex>` blob records
 * (JSON), `m!<hex>` manifests (bytes), `r!<hex>` chunk refcounts (decimal), `s!open`
 * the open marker. Mutations are single batches (atomic in LevelDB's log).
 */
export class LevelBlobIndex implements BlobIndex {
  private constructor(private readonly db: Db) {}

  static async open(location: string): Promise<LevelBlobIndex> {
    const db: Db = new ClassicLevel<string, Uint8Array>(location, { keyEncoding: "utf8", valueEncoding: "view" })
    try {
      await db.open()
    } catch (err) {
      throw new StorageError("index open", { cause: err })
    }
    return new LevelBlobIndex(db)
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
    if (hexes.length === 0) return []
    const vals = await this.db.getMany(hexes.map((h) => `r!${h}`))
    return vals.map((v) => (v === undefined ? 0 : Number(text(v))))
  }

  async commit(hex: string, meta: BlobMeta, manifest: Uint8Array | undefined, chunks: readonly string[]): Promise<void> {
    const distinct = [...new Set(chunks)]
    const counts = await this.refcounts(distinct)
    const batch = this.db.batch()
    batch.put(`b!${hex}`, utf8(JSON.stringify(meta)))
    if (manifest) batch.put(`m!${hex}`, manifest)
    distinct.forEach((c, i) => batch.put(`r!${c}`, utf8(String(counts[i]! + 1))))
    await this.#write(batch)
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
    await this.db.close()
  }

  async #get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.db.get(key)
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

const enc = new TextEncoder()
const dec = new TextDecoder()
const utf8 = (s: string) => enc.encode(s)
const text = (b: Uint8Array) => dec.decode(b)
