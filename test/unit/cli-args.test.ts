import { describe, expect, it } from "vitest"
import { checkCommand, findCommand, type OptionSpec, parseArgv, parseTags, type ProgramSpec } from "../../cli/args.ts"
import { UsageError } from "../../cli/exit-codes.ts"

const OPTIONS: Record<string, OptionSpec> = {
  dir: { type: "string", help: "" },
  out: { type: "string", short: "o", help: "" },
  tag: { type: "string", multiple: true, help: "" },
  json: { type: "boolean", help: "" },
  quiet: { type: "boolean", short: "q", help: "" },
}
const PROG: ProgramSpec = {
  name: "p",
  summary: "",
  exitCodes: "",
  options: OPTIONS,
  groups: ["transfer"],
  commands: [
    { name: "get", args: "<ref>", required: 1, summary: "", description: "", options: ["dir", "out", "quiet"], env: [], examples: [] },
    { name: "transfer send", args: "<file>", required: 1, summary: "", description: "", options: ["dir"], env: [], examples: [] },
  ],
}

const usage = (f: () => unknown) => {
  try {
    f()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).not.toContain("\n")
    return (err as Error).message
  }
  throw new Error("no usage error")
}

describe("cli argument parsing", () => {
  it("takes long, inline, short, clustered and repeated options, '-' and everything after '--' as positionals", () => {
    const p = parseArgv(["get", "--dir", "d", "--out=o", "-qo", "x", "--tag", "a=1", "--tag", "b=2", "-", "--", "--json"], OPTIONS)
    expect(p.values).toEqual({ dir: "d", out: "x", quiet: true, tag: ["a=1", "b=2"] })
    expect(p.positionals).toEqual(["get", "-", "--json"])
    expect(parseArgv(["-ofile"], OPTIONS).values.out).toBe("file")
  })

  it("refuses unknown options, missing values, values given to flags, in one line", () => {
    expect(usage(() => parseArgv(["--foo"], OPTIONS))).toContain("'--foo'")
    expect(usage(() => parseArgv(["-z"], OPTIONS))).toContain("'-z'")
    expect(usage(() => parseArgv(["--out"], OPTIONS))).toContain("'--out'")
    expect(usage(() => parseArgv(["--out", "--json"], OPTIONS))).toContain("'--out'")
    expect(usage(() => parseArgv(["--json=1"], OPTIONS))).toContain("'--json'")
    expect(usage(() => parseArgv(["--constructor"], OPTIONS))).toContain("'--constructor'")
  })

  it("finds commands and groups, and checks options and argument counts per command", () => {
    expect(findCommand(PROG, ["transfer", "send", "f"])).toMatchObject({ cmd: { name: "transfer send" }, args: ["f"] })
    expect(findCommand(PROG, [])).toBeUndefined()
    usage(() => findCommand(PROG, ["nope"]))
    usage(() => findCommand(PROG, ["transfer"]))
    usage(() => findCommand(PROG, ["transfer", "nope"]))
    const get = PROG.commands[0]!
    checkCommand(PROG, get, ["r"], [["out", "-o"]])
    expect(usage(() => checkCommand(PROG, get, ["r"], [["tag", "--tag"]]))).toContain("'--tag'")
    usage(() => checkCommand(PROG, get, [], []))
    usage(() => checkCommand(PROG, get, ["r", "extra"], []))
  })

  it("tags are key=value (the value may hold '=' or be empty)", () => {
    expect(parseTags(["a=1", "b=x=y", "c="])).toEqual({ a: "1", b: "x=y", c: "" })
    usage(() => parseTags(["novalue"]))
    usage(() => parseTags(["=v"]))
  })
})
