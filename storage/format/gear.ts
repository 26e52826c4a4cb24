/**
 * The FastCDC gear table: 256 pseudo-random 32-bit values from a fixed seed
 * (mulberry32, seed "DFG1"). Part of the storage format: a known-answer test pins
 * its BLAKE3, so any change fails loudly instead of silently breaking dedup.
 */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) | 0
  }
}

const GEAR_SEED = 0x44464731 // "DFG1"

export const GEAR: Int32Array = (() => {
  const next = mulberry32(GEAR_SEED)
  const table = new Int32Array(256)
  for (let i = 0; i < 256; i++) table[i] = next()
  return table
})()
