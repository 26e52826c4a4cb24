import { describeTargets } from "../fuzz/suite.ts"
import {
  envelopeTarget,
  heartbeatTarget,
  heatDeltaTarget,
  heatPageTarget,
  holdersDeltaTarget,
  holdersPageTarget,
  nodesPageTarget,
  pageHeaderTarget,
  pageTarget,
  syncRequestTarget,
} from "../fuzz/targets.ts"

describeTargets("fold traffic", [
  envelopeTarget,
  syncRequestTarget,
  pageHeaderTarget,
  pageTarget,
  holdersPageTarget,
  heatPageTarget,
  nodesPageTarget,
  holdersDeltaTarget,
  heatDeltaTarget,
  heartbeatTarget,
])
