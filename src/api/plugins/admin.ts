// bull-board at /admin/queues: the queues' jobs by state, for an operator with a browser.
// Read-only: nothing here can retry, promote or remove a job. It sits behind the auth hook like
// every route not marked public, so with API_KEYS set it needs the bearer key too.
import fp from 'fastify-plugin';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';

export const ADMIN_BASE_PATH = '/admin/queues';

async function adminPlugin(app: FastifyInstance) {
  const queues: Queue[] = [...app.queues.predict.shards, ...app.queues.bulk.shards];
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'scoring queues' } },
  });
  // Registered in a scope of its own; the root's onRequest hooks (auth) still run on its routes.
  await app.register(serverAdapter.registerPlugin(), { prefix: ADMIN_BASE_PATH });
}

export default fp(adminPlugin, { name: 'admin', dependencies: ['queues', 'auth'] });
