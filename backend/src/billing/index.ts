/**
 * Billing sinks (DESIGN.md FIG 3 step 11): the account manager enqueues its signed withdrawal and
 * deposit records in the clearing transaction; the dispatcher delivers them to file and webhook sinks.
 */
export { type BackoffOptions, backoffDelay } from '@obol/protocol/backoff';
export { type BillingDispatcherOptions, type BillingLogger, BillingDispatcher, type DispatchResult } from './dispatcher.ts';
export { JsonlFileSink, type JsonlFileSinkOptions } from './fileSink.ts';
export { enqueueBillingRecord, type PendingBillingRecord, pendingBillingRecords } from './outbox.ts';
export { type BillingRecord, type BillingRecordType, type BillingSink, checkBillingRecord, checkSinkName, SINK_NAME_PATTERN } from './record.ts';
export {
  DEFAULT_TOLERANCE_SEC,
  type ReceivedHeaders,
  verifyWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookSink,
  webhookHeaders,
  type WebhookSinkOptions,
} from './webhookSink.ts';
