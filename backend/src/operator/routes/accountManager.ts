import { OperatorPaths } from '@obol/protocol/api';
import type { FastifyPluginAsync } from 'fastify';
import type { AccountManagerAgent } from '../accountManagerAgent.ts';

/** The account manager's HTTP edge: each route hands its body, token or path to one step of the agent. */
export const accountManagerRoutes: FastifyPluginAsync<{ agent: AccountManagerAgent }> = async (app, { agent }) => {
  app.get(OperatorPaths.exchangeTable, async () => agent.exchangeTable());
  app.post(OperatorPaths.registerCustomer, async (req) => agent.registerCustomer(req.body));
  app.post(OperatorPaths.challenge, async (req) => agent.challenge(req.body));
  app.post(OperatorPaths.login, async (req) => agent.login(req.body));
  app.get(OperatorPaths.balance, async (req) => agent.balance(req.headers.authorization));
  app.post(OperatorPaths.demoTopUp, async (req) => agent.demoTopUp(req.headers.authorization, req.body));
  app.post(OperatorPaths.initiate, async (req) => agent.initiate(req.body));
  app.get(OperatorPaths.merchantCertificate, async (req) => {
    const { operatorId, merchantId } = req.params as { operatorId: string; merchantId: string };
    return agent.merchantCertificate(operatorId, merchantId);
  });
  app.post(OperatorPaths.customerRecord, async (req) => agent.customerRecord(req.body));
  app.get(OperatorPaths.transaction, async (req) => {
    const { transactionId } = req.params as { transactionId: string };
    return agent.transaction(req.headers.authorization, transactionId);
  });
  app.post(OperatorPaths.peerClearing, async (req) => agent.clearing(req.body));
  app.post(OperatorPaths.peerClearings, async (req) => agent.clearings(req.body));
};
