/** Atomically swaps two paths; undefined when the native build is unavailable. */
export declare const exchange: ((a: string, b: string) => void) | undefined
