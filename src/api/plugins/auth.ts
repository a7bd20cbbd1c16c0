// Bearer-key auth. With API_KEYS set every route but the ones marked public needs a valid key;
// request.owner then names the key (a hash, never the key) so jobs belong to it. Routes marked
// admin (the queue board) take only ADMIN_API_KEYS: a tenant's key does not open them.
import fp from 'fastify-plugin';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../../shared/errors.ts';
import { sendAppError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Short hash of the caller's key; 'anonymous' when the api is open. */
    owner: string;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** Only an admin key opens this route. */
    admin?: boolean;
    /**
     * The route's scope answers errors in a shape of its own (the Open Inference Protocol's
     * {"error": "…"}): a refused key is thrown to that scope's error handler, not sent from here.
     */
    ownErrorShape?: boolean;
  }
}

export type AuthOptions = { apiKeys: readonly string[]; adminApiKeys: readonly string[] };

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Compares digests in constant time so the check does not leak how much of a key matched. */
function matches(known: readonly Buffer[], given: Buffer): boolean {
  let found = false;
  for (const k of known) found = timingSafeEqual(k, given) || found;
  return found;
}

function bearer(header: string | undefined): Buffer | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match ? digest(match[1]!) : undefined;
}

async function authPlugin(app: FastifyInstance, { apiKeys, adminApiKeys }: AuthOptions) {
  app.decorateRequest('owner', 'anonymous');
  if (apiKeys.length === 0) app.log.warn('API_KEYS is not set: the api is open to anyone who can reach it');
  if (apiKeys.length === 0 && adminApiKeys.length === 0) return;
  const known = apiKeys.map(digest);
  const admins = adminApiKeys.map(digest);

  // Errors are sent from here, not thrown: the admin board's scope has an error handler of its own
  // (bull-board's), which would answer in its own shape. Routes that keep a shape of their own
  // (ownErrorShape) get the error thrown, for their scope's handler to shape.
  app.addHook('onRequest', async (request, reply) => {
    const { config } = request.routeOptions;
    if (config.public) return;
    if (config.admin) {
      // Without admin keys the board is registered only when the whole api is open.
      if (admins.length === 0) return;
      const given = bearer(request.headers.authorization);
      if (!given) return sendAppError(reply, request, new UnauthorizedError());
      if (!matches(admins, given)) {
        return matches(known, given)
          ? sendAppError(reply, request, new ForbiddenError('This key does not open the admin board'))
          : sendAppError(reply, request, new UnauthorizedError());
      }
      return;
    }
    if (known.length === 0) return;
    const given = bearer(request.headers.authorization);
    if (!given || !matches(known, given)) {
      // An unknown path is refused in the shape of the scope it falls in (a /v2 path in the
      // protocol's): thrown, the error reaches that scope's handler, as its not-found would.
      if (config.ownErrorShape || request.is404) throw new UnauthorizedError();
      return sendAppError(reply, request, new UnauthorizedError());
    }
    request.owner = given.subarray(0, 12).toString('hex');
  });
}

export default fp(authPlugin, { name: 'auth' });
