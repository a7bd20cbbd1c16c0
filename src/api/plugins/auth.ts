// Bearer-key auth. With API_KEYS set every route but the ones marked public needs a valid
// key; request.owner then names the key (a hash, never the key) so jobs belong to it.
import fp from 'fastify-plugin';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '../../shared/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Short hash of the caller's key; 'anonymous' when the api is open. */
    owner: string;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

async function authPlugin(app: FastifyInstance, { apiKeys }: { apiKeys: readonly string[] }) {
  app.decorateRequest('owner', 'anonymous');
  if (apiKeys.length === 0) {
    app.log.warn('API_KEYS is not set: the api is open to anyone who can reach it');
    return;
  }
  const known = apiKeys.map(digest);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new UnauthorizedError();
    const given = digest(match[1]!);
    // Compare digests in constant time so the check does not leak how much of a key matched.
    if (!known.some((k) => timingSafeEqual(k, given))) throw new UnauthorizedError();
    request.owner = given.subarray(0, 12).toString('hex');
  });
}

export default fp(authPlugin, { name: 'auth' });
