"use strict"
// Loads the addon when it built; `exchange` is undefined otherwise (callers fall back).
let exchange
try {
  exchange = require("./build/Release/rename_exchange.node").exchange
} catch {
  exchange = undefined
}
module.exports = { exchange }
