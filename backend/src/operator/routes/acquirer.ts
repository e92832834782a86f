import { OperatorPaths } from '@obol/protocol/api';
import type { FastifyPluginAsync } from 'fastify';
import type { AcquirerAgent } from '../acquirerAgent.ts';

/** The acquirer's HTTP edge: each route hands its body or path to one step of the agent. */
export const acquirerRoutes: FastifyPluginAsync<{ agent: AcquirerAgent }> = async (app, { agent }) => {
  app.post(OperatorPaths.peerInitiate, async (req) => agent.initiate(req.body));
  app.get(OperatorPaths.peerMerchant, async (req) => {
    const { merchantId } = req.params as { merchantId: string };
    return agent.merchant(merchantId);
  });
  app.post(OperatorPaths.peerCustomerRecord, async (req) => agent.customerRecord(req.body));
  app.post(OperatorPaths.merchantRecord, async (req) => agent.merchantRecord(req.body));
  app.post(OperatorPaths.merchantStatement, async (req) => agent.merchantStatement(req.body));
  app.post(OperatorPaths.arbiterKey, async (req) => agent.arbiterKey(req.body));
};
