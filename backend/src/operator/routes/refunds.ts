import { OperatorPaths } from '@obol/protocol/api';
import type { FastifyPluginAsync } from 'fastify';
import type { AccountManagerAgent } from '../accountManagerAgent.ts';
import type { AcquirerAgent } from '../acquirerAgent.ts';

/** Refunds after clearing (refunds.ts): the merchant's at the acquirer, the peer's and the wallet's at the account manager. */
export const refundRoutes: FastifyPluginAsync<{ accountManager: AccountManagerAgent; acquirer: AcquirerAgent }> = async (
  app,
  { accountManager, acquirer },
) => {
  app.post(OperatorPaths.merchantRefund, async (req) => acquirer.merchantRefund(req.body));
  app.post(OperatorPaths.peerRefund, async (req) => accountManager.refund(req.body));
  app.get(OperatorPaths.refunds, async (req) => accountManager.refunds(req.headers.authorization));
};
