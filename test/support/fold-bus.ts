/** The folds' integration tests use the plugin's production adapter. */
export { type CountingFoldBus, natsFoldBus } from "../../plugin/nats-bus.ts"
