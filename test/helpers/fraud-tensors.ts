// One fraud record as the Open Inference Protocol's tensors (one per field, batch of one), as a
// client sends it over REST JSON and over gRPC typed contents: the bench's protocol rows and the
// end-to-end tests build their calls from the same shapes.
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

/** One fraud record as the protocol's five REST tensors, FP64 and INT64 as a JSON client sends numbers. */
export function fraudRestInputs(r: FraudRecord) {
  return [
    { name: 'transaction_amount', shape: [1], datatype: 'FP64', data: [r.transaction_amount] },
    { name: 'merchant_category', shape: [1], datatype: 'BYTES', data: [r.merchant_category] },
    { name: 'card_present', shape: [1], datatype: 'BOOL', data: [r.card_present] },
    { name: 'hour_of_day', shape: [1], datatype: 'INT64', data: [r.hour_of_day] },
    { name: 'days_since_last_transaction', shape: [1], datatype: 'FP64', data: [r.days_since_last_transaction] },
  ];
}

/** The same record as gRPC typed contents. */
export function fraudGrpcInputs(r: FraudRecord) {
  return [
    { name: 'transaction_amount', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [r.transaction_amount] } },
    { name: 'merchant_category', datatype: 'BYTES', shape: ['1'], contents: { bytes_contents: [Buffer.from(r.merchant_category)] } },
    { name: 'card_present', datatype: 'BOOL', shape: ['1'], contents: { bool_contents: [r.card_present] } },
    { name: 'hour_of_day', datatype: 'INT32', shape: ['1'], contents: { int_contents: [r.hour_of_day] } },
    { name: 'days_since_last_transaction', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [r.days_since_last_transaction] } },
  ];
}
