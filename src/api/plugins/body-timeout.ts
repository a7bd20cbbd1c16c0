// A request body must arrive within its route's time (bodyTimeoutMs in the route's config, else
// BODY_TIMEOUT_MS). A client that trickles its body is answered 408 in the contract's shape and
// its socket closed: it holds no connection or parser state past that. The request's body then
// ends in an error, so whatever was reading it cleans up as after any failed upload.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { rawErrorResponse } from './errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How long this route's body may take to arrive; BODY_TIMEOUT_MS when unset. */
    bodyTimeoutMs?: number;
  }
}

export type BodyTimeoutOptions = { bodyTimeoutMs: number };

async function bodyTimeoutPlugin(app: FastifyInstance, { bodyTimeoutMs }: BodyTimeoutOptions) {
  app.addHook('preParsing', async (request, reply, payload) => {
    const { headers, raw } = request;
    if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return payload;
    if (raw.complete) return payload;
    const timeoutMs = request.routeOptions.config.bodyTimeoutMs ?? bodyTimeoutMs;
    const timer = setTimeout(() => {
      if (raw.complete || reply.sent || raw.socket.destroyed) return;
      request.log.info({ request_id: request.id, timeout_ms: timeoutMs }, 'request body too slow; cut off');
      // Written on the socket itself: Fastify's reply belongs to the handler still reading the body.
      // Once written, the socket is destroyed, and the body's reader sees it abort.
      raw.socket.write(rawErrorResponse(408, 'request_timeout', `The request body did not arrive within ${timeoutMs} ms`, request.id));
      raw.socket.destroySoon();
    }, timeoutMs);
    const clear = () => clearTimeout(timer);
    raw.once('end', clear);
    raw.once('close', clear);
    reply.raw.once('close', clear);
    return payload;
  });
}

export default fp(bodyTimeoutPlugin, { name: 'body-timeout' });
