import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import * as service from '../../src/shared/errors.ts';
import { DeadlineExceededError, UnknownModelError as ModelNotFoundError, isUnexpected, toOipError } from '../../src/api/oip/errors.ts';
import { OverloadedError } from '../../src/shared/errors.ts';

test("the service's own errors keep their meaning on both transports", () => {
  const cases: [Error, string, number, status, number | undefined][] = [
    [new service.ValidationError('bad'), 'invalid_argument', 400, status.INVALID_ARGUMENT, undefined],
    [new service.UnauthorizedError(), 'unauthenticated', 401, status.UNAUTHENTICATED, undefined],
    [new service.NotFoundError('no model'), 'not_found', 404, status.NOT_FOUND, undefined],
    [new service.OverloadedError(2), 'overloaded', 429, status.RESOURCE_EXHAUSTED, 2],
    [new service.UnavailableError(), 'unavailable', 503, status.UNAVAILABLE, 1],
    [new service.TimeoutError(2000), 'deadline_exceeded', 504, status.DEADLINE_EXCEEDED, undefined],
  ];
  for (const [error, kind, http, grpc, retryAfter] of cases) {
    const oip = toOipError(error);
    assert.equal(oip.kind, kind, error.name);
    assert.equal(oip.httpStatus, http);
    assert.equal(oip.grpcCode, grpc);
    assert.equal(oip.message, error.message);
    assert.equal(oip.retryAfterSeconds, retryAfter);
  }
});

test('protocol errors pass through; anything else is internal and says nothing', () => {
  const deadline = new DeadlineExceededError();
  assert.equal(toOipError(deadline), deadline);
  assert.equal(toOipError(new ModelNotFoundError('m', '3')).message, 'Model "m" has no version "3"');
  assert.equal(toOipError(new OverloadedError(1)).retryAfterSeconds, 1);
  const internal = toOipError(new Error('secret detail'));
  assert.equal(internal.kind, 'internal');
  assert.equal(internal.httpStatus, 500);
  assert.equal(internal.grpcCode, status.INTERNAL);
  assert.equal(internal.message, 'Internal server error');
  assert.equal(isUnexpected(new Error('x')), true);
  assert.equal(isUnexpected(new DOMException('gone', 'AbortError')), false);
  assert.equal(isUnexpected(deadline), false);
});

test("a caller's abort is its own outcome: CANCELLED (gRPC) and 499 (REST), not internal", () => {
  const cancelled = toOipError(new DOMException('This operation was aborted', 'AbortError'));
  assert.equal(cancelled.kind, 'cancelled');
  assert.equal(cancelled.grpcCode, status.CANCELLED);
  assert.equal(cancelled.httpStatus, 499);
});
