// bull-board at /admin/queues: the queues' jobs by state, for an operator with a browser.
// Read-only: nothing here can retry, promote or remove a job. The queues hold every tenant's work,
// so the board is for admin keys only (ADMIN_API_KEYS); with API_KEYS set and no admin key it is
// not served at all. Job data (the records of online calls) is hidden unless ADMIN_SHOW_JOB_DATA.
import fp from 'fastify-plugin';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';

export const ADMIN_BASE_PATH = '/admin/queues';

export type AdminOptions = { apiKeys: readonly string[]; adminApiKeys: readonly string[]; showJobData: boolean };

/** Longest string kept as it is when job data is hidden: ids and names, not payloads. */
const MAX_SHOWN_STRING = 64;

/**
 * Job data without record contents: scalars (job ids, chunk numbers, counts) stay, so an operator
 * can still follow a job; arrays and objects become a count.
 */
export function hideJobData(data: unknown): unknown {
  if (data === null || typeof data !== 'object') return data;
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (Array.isArray(value)) shown[key] = `[${value.length} item(s) hidden]`;
    else if (value !== null && typeof value === 'object') shown[key] = '[hidden]';
    else if (typeof value === 'string' && value.length > MAX_SHOWN_STRING) shown[key] = '[hidden]';
    else shown[key] = value;
  }
  return shown;
}

async function adminPlugin(app: FastifyInstance, options: AdminOptions) {
  if (options.apiKeys.length > 0 && options.adminApiKeys.length === 0) {
    app.log.info('the admin board is off: API_KEYS is set and ADMIN_API_KEYS is not');
    return;
  }
  // Loaded only for a board that is served: bull-board (and its lodash) is ~8 MB of an idle api.
  const [{ createBullBoard }, { BullMQAdapter }, { FastifyAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/fastify'),
  ]);
  const adapt = (queue: Queue) => {
    const adapter = new BullMQAdapter(queue, { readOnlyMode: true });
    if (!options.showJobData) {
      adapter.setFormatter('data', hideJobData);
      adapter.setFormatter('returnValue', hideJobData);
    }
    return adapter;
  };
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  const board = createBullBoard({
    queues: [...app.online.producers.flatMap((p) => p.shards), ...app.queues.bulk.shards].map(adapt),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'scoring queues' } },
  });
  // Online queues are one per model version, made as versions appear: each joins the board with every shard.
  app.online.onProducer((producer) => {
    for (const queue of producer.shards) board.addQueue(adapt(queue));
  });

  await app.register(async (scope) => {
    // Every route of the board, its static files included, is an admin route for the auth hook.
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, admin: true };
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: ADMIN_BASE_PATH });
  });
}

export default fp(adminPlugin, { name: 'admin', dependencies: ['queues', 'online-dispatcher', 'auth'] });
