// The worker's ops port: /health (the process runs), /ready (model loaded, Redis answers,
// not draining) and /metrics (Prometheus text). Plain node:http: three routes need no framework.
import { createServer, type Server } from 'node:http';
import type { Telemetry } from '../shared/telemetry.ts';

export type OpsState = { isReady: () => boolean; modelVersion: string };

export function startOpsServer(port: number, host: string, state: OpsState, telemetry: Telemetry): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'method_not_allowed', message: 'GET only' } }));
    } else if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
    } else if (path === '/ready') {
      const ready = state.isReady();
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify(ready ? { status: 'ready', model_version: state.modelVersion } : { status: 'not_ready' }));
    } else if (path === '/metrics') {
      telemetry.serveMetrics(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'Not found' } }));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
