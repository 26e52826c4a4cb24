/**
 * The command-line front of both CLIs: argument parsing, per-command help and --version. It
 * imports nothing but node:fs, so `--help`, `--version` and usage errors answer before the
 * store, NATS or Effect are loaded (the commands are imported afterwards, see net-blob.ts).
 */
import { readFileSync } from "node:fs"
import { UsageError } from "./exit-codes.ts"

export interface OptionSpec {
  readonly type: "string" | "boolean"
  readonly short?: string
  /** A string option given more than once collects every value. */
  readonly multiple?: boolean
  /** How the value is shown in help: `--out <path>`. */
  readonly value?: string
  readonly help: string
}

export interface CommandSpec {
  /** `put`, or `transfer send-blob` for a command in a group. */
  readonly name: string
  /** Positional arguments as shown in help, e.g. `<file|dir|->`. */
  readonly args: string
  /** How many positionals it takes: exactly `required`, plus up to `optional` more. */
  readonly required: number
  readonly optional?: number
  readonly summary: string
  readonly description: string
  /** Names of the options (keys of the program's option table) it accepts. */
  readonly options: readonly string[]
  /** What an option means for this command, where it differs from the table's text. */
  readonly optionHelp?: Readonly<Record<string, string>>
  /** Environment variables it reads, with what for. */
  readonly env: ReadonlyArray<readonly [string, string]>
  readonly examples: readonly string[]
}

export interface ProgramSpec {
  readonly name: string
  readonly summary: string
  readonly options: Readonly<Record<string, OptionSpec>>
  readonly commands: readonly CommandSpec[]
  /** Command groups (`transfer`): a group name is followed by one of its commands' last word. */
  readonly groups?: readonly string[]
  readonly exitCodes: string
}

export type Values = Record<string, string | boolean | string[] | undefined>

export interface Parsed {
  readonly values: Values
  readonly positionals: string[]
  /** Option names as given (`--out`, `-o`), to tell which apply to the command. */
  readonly given: ReadonlyArray<readonly [name: string, as: string]>
}

/**
 * Parses argv against the option table. Every mistake is a UsageError with a one-line
 * message: an unknown option, a string option without its value, a value given to a flag.
 * `--` ends the options. `-` alone is a positional (stdin).
 */
export function parseArgv(argv: readonly string[], options: Readonly<Record<string, OptionSpec>>): Parsed {
  const values: Values = {}
  const positionals: string[] = []
  const given: Array<readonly [string, string]> = []
  const byShort = new Map(Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])))
  const set = (name: string, as: string, value: string | boolean) => {
    given.push([name, as])
    const spec = options[name]!
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value as string]
    else values[name] = value
  }
  const takeValue = (name: string, as: string, inline: string | undefined, i: number): [string, number] => {
    if (inline !== undefined) return [inline, i]
    const next = argv[i + 1]
    // `--out --json` is a forgotten value, not a file named --json (write --out=--json for that)
    if (next === undefined || (next.startsWith("-") && next !== "-")) throw new UsageError(`option '${as}' needs a value${options[name]!.value ? ` (${options[name]!.value})` : ""}`)
    return [next, i + 1]
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=")
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      const inline = eq < 0 ? undefined : arg.slice(eq + 1)
      const as = `--${name}`
      const spec = Object.hasOwn(options, name) ? options[name] : undefined
      if (!spec) throw new UsageError(`unknown option '${as}'`)
      if (spec.type === "boolean") {
        if (inline !== undefined) throw new UsageError(`option '${as}' takes no value`)
        set(name, as, true)
      } else {
        const [value, at] = takeValue(name, as, inline, i)
        i = at
        set(name, as, value)
      }
    } else if (arg.startsWith("-") && arg !== "-") {
      // short options, clustered (-qo file, -ofile)
      for (let j = 1; j < arg.length; j++) {
        const as = `-${arg[j]}`
        const name = byShort.get(arg[j]!)
        if (name === undefined) throw new UsageError(`unknown option '${as}'`)
        if (options[name]!.type === "boolean") {
          set(name, as, true)
          continue
        }
        const rest = arg.slice(j + 1)
        const [value, at] = takeValue(name, as, rest === "" ? undefined : rest, i)
        i = at
        set(name, as, value)
        break
      }
    } else positionals.push(arg)
  }
  return { values, positionals, given }
}

/** The command a parsed line names, and its arguments; UsageError for an unknown one. */
export function findCommand(prog: ProgramSpec, positionals: readonly string[]): { cmd: CommandSpec; args: string[] } | undefined {
  const [first, second] = positionals
  if (first === undefined) return undefined
  if (prog.groups?.includes(first)) {
    const cmd = prog.commands.find((c) => c.name === `${first} ${second}`)
    if (!cmd) {
      throw new UsageError(second === undefined ? `'${first}' needs a command` : `unknown command '${first} ${second}'`, `${prog.name} help ${first}`)
    }
    return { cmd, args: positionals.slice(2) }
  }
  const cmd = prog.commands.find((c) => c.name === first)
  if (!cmd) throw new UsageError(`unknown command '${first}'`)
  return { cmd, args: positionals.slice(1) }
}

/** Checks a command's options and argument count (one-line UsageErrors pointing at its help). */
export function checkCommand(prog: ProgramSpec, cmd: CommandSpec, args: readonly string[], given: Parsed["given"]): void {
  const see = `${prog.name} help ${cmd.name}`
  for (const [name, as] of given) {
    if (!cmd.options.includes(name)) throw new UsageError(`option '${as}' does not apply to '${cmd.name}'`, see)
  }
  if (args.length < cmd.required) throw new UsageError(`'${cmd.name}' needs ${cmd.args}`, see)
  if (args.length > cmd.required + (cmd.optional ?? 0)) throw new UsageError(`unexpected argument '${args[cmd.required + (cmd.optional ?? 0)]}' for '${cmd.name}'`, see)
}

/** `k=v` tags into a record; a tag without `=` or with an empty key is a usage error. */
export function parseTags(tags: readonly string[] | undefined, see?: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const t of tags ?? []) {
    const i = t.indexOf("=")
    if (i <= 0) throw new UsageError(`a tag is key=value, got '${t}'`, see)
    out[t.slice(0, i)] = t.slice(i + 1)
  }
  return out
}

const optionLabel = (name: string, o: OptionSpec) => `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? ` ${o.value ?? "<value>"}` : ""}`

function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n")
}

/** Help for one command: what it does, its options, the environment it reads, examples. */
export function commandHelp(prog: ProgramSpec, cmd: CommandSpec): string {
  const opts = cmd.options.map((n) => [optionLabel(n, prog.options[n]!), cmd.optionHelp?.[n] ?? prog.options[n]!.help] as const)
  return [
    `usage: ${prog.name} ${cmd.name}${cmd.args ? ` ${cmd.args}` : ""}${cmd.options.length ? " [options]" : ""}`,
    "",
    cmd.description,
    "",
    "options:",
    table([...opts, ["-h, --help", "this help"]]),
    ...(cmd.env.length ? ["", "environment:", table(cmd.env)] : []),
    "",
    cmd.examples.length > 1 ? "examples:" : "example:",
    ...cmd.examples.map((e) => `  ${e}`),
    "",
    `exit codes: ${prog.exitCodes}`,
    "",
  ].join("\n")
}

/** The overview: every command in one line, the global options and where help lives. */
export function overview(prog: ProgramSpec): string {
  return [
    `usage: ${prog.name} <command> [arguments] [options]`,
    "",
    prog.summary,
    "",
    "commands:",
    table(prog.commands.map((c) => [`${c.name}${c.args ? ` ${c.args}` : ""}`, c.summary])),
    "",
    "options:",
    table([
      ["-h, --help", `help (also: ${prog.name} help <command>, ${prog.name} <command> --help)`],
      ["-V, --version", "print the version"],
    ]),
    "",
    `exit codes: ${prog.exitCodes}`,
    "",
  ].join("\n")
}

/** Help for a group (`net-mesh help transfer`): its commands. */
export function groupHelp(prog: ProgramSpec, group: string): string {
  const cmds = prog.commands.filter((c) => c.name.startsWith(`${group} `))
  return [
    `usage: ${prog.name} ${group} <command> [arguments] [options]`,
    "",
    "commands:",
    table(cmds.map((c) => [`${c.name}${c.args ? ` ${c.args}` : ""}`, c.summary])),
    "",
    `see ${prog.name} help ${group} <command> for one command's options`,
    "",
  ].join("\n")
}

/**
 * The package's version from its package.json: dist/cli/x.js sits two folders below the
 * package root, cli/x.ts (run from source) one.
 */
export function packageVersion(from: string = import.meta.url): string {
  for (const up of ["../../package.json", "../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, from), "utf8")) as { name?: string; version?: string }
      if (pkg.name === "dataforts" && typeof pkg.version === "string") return pkg.version
    } catch {
      // not there: the other layout
    }
  }
  return "unknown"
}

export type Front = { kind: "exit"; code: number } | { kind: "run"; cmd: CommandSpec; args: string[]; values: Values }

/**
 * Everything a CLI does before it imports its commands: --version, help in its three forms,
 * and every usage mistake (one line on stderr, exit 2). `run` means the line is well-formed.
 */
export function front(prog: ProgramSpec, argv: readonly string[]): Front {
  const out = (text: string) => process.stdout.write(text)
  const dash = argv.indexOf("--")
  const flags = dash < 0 ? argv : argv.slice(0, dash)
  if (flags.includes("--version") || flags.includes("-V")) {
    out(`${prog.name} ${packageVersion()}\n`)
    return { kind: "exit", code: 0 }
  }
  // `help [command]` asks for exactly that command; --help anywhere for the first command named
  if (flags[0] === "help") return help(prog, flags.slice(1).filter((a) => !a.startsWith("-")), true)
  if (flags.includes("--help") || flags.includes("-h")) return help(prog, flags.filter((a) => !a.startsWith("-")), false)
  let parsed: Parsed
  try {
    parsed = parseArgv(argv, prog.options)
  } catch (err) {
    // point at the command's own help when the line names one
    const named = err instanceof UsageError && err.see === undefined ? prog.commands.find((c) => c.name === flags.filter((a) => !a.startsWith("-")).slice(0, c.name.split(" ").length).join(" ")) : undefined
    throw named ? new UsageError((err as Error).message, `${prog.name} help ${named.name}`) : err
  }
  // options before the word: `net-blob --dir d help put`
  if (parsed.positionals[0] === "help") return help(prog, parsed.positionals.slice(1), true)
  if (parsed.positionals.length === 0) {
    // like git: the overview, on stderr, and a usage exit
    process.stderr.write(overview(prog))
    return { kind: "exit", code: 2 }
  }
  const found = findCommand(prog, parsed.positionals)!
  checkCommand(prog, found.cmd, found.args, parsed.given)
  return { kind: "run", cmd: found.cmd, args: found.args, values: parsed.values }
}

/**
 * Prints the help the words name: a command's, a group's, else the overview. `exact`: the
 * words must name a command (`help frobnicate` is a usage error); otherwise the first word
 * that names one counts (option values may come before it).
 */
function help(prog: ProgramSpec, words: readonly string[], exact: boolean): Front {
  const out = (text: string) => process.stdout.write(text)
  for (const [i, w] of (exact ? words.slice(0, 1) : words).entries()) {
    if (prog.groups?.includes(w)) {
      const named = prog.commands.find((c) => c.name === `${w} ${words[i + 1]}`)
      if (!named && exact && words[i + 1] !== undefined) break
      out(named ? commandHelp(prog, named) : groupHelp(prog, w))
      return { kind: "exit", code: 0 }
    }
    const named = prog.commands.find((c) => c.name === w)
    if (named) {
      out(commandHelp(prog, named))
      return { kind: "exit", code: 0 }
    }
  }
  if (exact && words.length > 0) throw new UsageError(`no help for '${words.join(" ")}': not a command`)
  out(overview(prog))
  return { kind: "exit", code: 0 }
}
