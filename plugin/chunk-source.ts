import { bytesReader } from "../storage/chunk-store.ts"
import type { LocalStore } from "../storage/local-store.ts"
import type { ChunkReader, ChunkSource } from "../transfer/index.ts"

/**
 * What this node serves to peers: chunk files (read in windows, never whole) and the
 * manifests in its index (small, served from memory). Bytes are served as stored; the
 * receiver verifies, so a corrupt file here costs the peer a retry elsewhere, never bad data.
 */
export function storeChunkSource(store: LocalStore): ChunkSource {
  return {
    async open(hex: string): Promise<ChunkReader | undefined> {
      const chunk = await store.chunks.openRange(hex)
      if (chunk) return chunk
      const manifest = await store.manifestBytes(hex)
      return manifest === undefined ? undefined : bytesReader(manifest)
    },
  }
}
