#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, resolved next to this file (works from any cwd).
import { register } from "tsx/esm/api"
register()
await import("../net-mesh.ts")
