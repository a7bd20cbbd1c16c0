// Fraud records as the Open Inference Protocol's tensors (one per field, a batch of N), as a
// client sends them over REST JSON and over gRPC typed contents: the bench's protocol rows and the
// end-to-end tests build their calls from the same shapes.
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

/** Records as the protocol's five REST tensors, FP64 and INT64 as a JSON client sends numbers. */
export function fraudRestInputs(records: readonly FraudRecord[]) {
  const n = records.length;
  return [
    { name: 'transaction_amount', shape: [n], datatype: 'FP64', data: records.map((r) => r.transaction_amount) },
    { name: 'merchant_category', shape: [n], datatype: 'BYTES', data: records.map((r) => r.merchant_category) },
    { name: 'card_present', shape: [n], datatype: 'BOOL', data: records.map((r) => r.card_present) },
    { name: 'hour_of_day', shape: [n], datatype: 'INT64', data: records.map((r) => r.hour_of_day) },
    { name: 'days_since_last_transaction', shape: [n], datatype: 'FP64', data: records.map((r) => r.days_since_last_transaction) },
  ];
}

/** The same records as gRPC typed contents. */
export function fraudGrpcInputs(records: readonly FraudRecord[]) {
  const n = String(records.length);
  return [
    { name: 'transaction_amount', datatype: 'FP64', shape: [n], contents: { fp64_contents: records.map((r) => r.transaction_amount) } },
    { name: 'merchant_category', datatype: 'BYTES', shape: [n], contents: { bytes_contents: records.map((r) => Buffer.from(r.merchant_category)) } },
    { name: 'card_present', datatype: 'BOOL', shape: [n], contents: { bool_contents: records.map((r) => r.card_present) } },
    { name: 'hour_of_day', datatype: 'INT32', shape: [n], contents: { int_contents: records.map((r) => r.hour_of_day) } },
    {
      name: 'days_since_last_transaction',
      datatype: 'FP64',
      shape: [n],
      contents: { fp64_contents: records.map((r) => r.days_since_last_transaction) },
    },
  ];
}
