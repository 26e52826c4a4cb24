"use strict"
// Loads the addon when it built; undefined otherwise (callers leave malloc as it is).
let addon
try {
  addon = require("./build/Release/malloc_tune.node")
} catch {
  addon = undefined
}
module.exports = { mallocTune: addon }
