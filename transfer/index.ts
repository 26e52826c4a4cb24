/**
 * transfer/: moving one chunk's bytes between two nodes over core NATS. The plugin starts
 * one sender per node and fetches through the connection's shared receiver.
 */
export { startSender, type ChunkReader, type ChunkSource, type Sender, type SenderOptions, type SenderStats } from "./sender.ts"
export {
  ChunkReceiver,
  fetchChunk,
  fetchChunkReport,
  receiverFor,
  type FetchChunkOptions,
  type FetchReport,
  type ReceiverOptions,
  type ReceiverStats,
} from "./receiver.ts"
export { holderSubject } from "./subjects.ts"
export { BATCH_CHUNK_MAX_BYTES, batchSubject, fetchBatch, serveBatches } from "./batch.ts"
export * from "./constants.ts"
