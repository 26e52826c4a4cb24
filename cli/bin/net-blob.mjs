#!/usr/bin/env -S node --no-incremental-marking
// --no-incremental-marking: a streaming process with a small heap otherwise falls into back-to-back
// mark-compacts (V8's soft-limit start); see docs/PERFORMANCE.md, "Hosting a node".
// Runs the TypeScript CLI through tsx, resolved next to this file (works from any cwd).
import { register } from "tsx/esm/api"
register()
await import("../net-blob.ts")
