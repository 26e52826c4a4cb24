"use strict"
// Loads the addon when it built; undefined otherwise (callers leave malloc and memory as they are).
let addon
try {
  addon = require("./build/Release/malloc_tune.node")
} catch {
  addon = undefined
}
module.exports = { mallocTune: addon }
