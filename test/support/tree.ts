import { chmod, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { CHUNK_MAX_BYTES } from "../../storage/format/constants.ts"
import { seededBytes } from "./bytes.ts"

/**
 * Writes a tree with the interesting shapes: nested and empty directories, symlinks inside
 * and pointing outside, executable bits, 0-byte files, a file above the max chunk size.
 */
export async function makeTree(root: string, seed = 1, big = true): Promise<void> {
  await mkdir(join(root, "src/lib/deep/deeper"), { recursive: true })
  await mkdir(join(root, "empty/also-empty"), { recursive: true })
  await writeFile(join(root, "README.md"), `hello ${seed}\n`)
  await writeFile(join(root, "zero.bin"), new Uint8Array(0))
  await writeFile(join(root, "src/main.ts"), seededBytes(10_000, seed))
  await writeFile(join(root, "src/lib/deep/deeper/data.bin"), seededBytes(300_000, seed + 1))
  await writeFile(join(root, "run.sh"), "#!/bin/sh\necho hi\n")
  await chmod(join(root, "run.sh"), 0o755)
  await writeFile(join(root, "src/lib/readonly.txt"), "ro")
  await chmod(join(root, "src/lib/readonly.txt"), 0o444)
  await symlink("src/main.ts", join(root, "link-inside"))
  await symlink("../../outside/target", join(root, "src/link-outside"))
  await symlink("/etc/hostname", join(root, "link-absolute"))
  await writeFile(join(root, "src/dup-a.txt"), "same bytes")
  await writeFile(join(root, "src/dup-b.txt"), "same bytes")
  if (big) await writeFile(join(root, "big.bin"), seededBytes(CHUNK_MAX_BYTES + 12_345, seed + 2))
}

/** A comparable description of a tree: paths, kinds, modes, link targets and content. */
export async function describeTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  async function visit(dir: string, rel: string) {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name)
      const r = rel ? `${rel}/${name}` : name
      const st = await lstat(p)
      const mode = (st.mode & 0o777).toString(8)
      if (st.isSymbolicLink()) out[r] = `link ${await readlink(p)}`
      else if (st.isDirectory()) {
        out[r] = `dir ${mode}`
        await visit(p, r)
      } else {
        const bytes = await readFile(p)
        const { createHash } = await import("node:crypto")
        out[r] = `file ${mode} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`
      }
    }
  }
  await visit(root, "")
  return out
}
