// What a process's JavaScript holds, read from outside through its inspector (started with
// --inspect=127.0.0.1:0): a full garbage collection first, then process.memoryUsage(). Node serves
// the DevTools protocol over a WebSocket and has a WebSocket client built in; two commands need
// no library.

export type HeapAfterGc = { heapUsed: number; external: number; rss: number };

/** The inspector's WebSocket URL, from the "Debugger listening on ws://…" line the process prints. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
}

export type Inspector = { heapAfterGc(): Promise<HeapAfterGc>; close(): void };

export async function connectInspector(url: string): Promise<Inspector> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', () => reject(new Error(`no inspector at ${url}`)), { once: true });
  });
  let lastId = 0;
  const pending = new Map<number, (message: { result?: unknown; error?: { message: string } }) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (message.id !== undefined) pending.get(message.id)?.(message);
  });
  const send = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++lastId;
      pending.set(id, (message) => {
        pending.delete(id);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result);
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    async heapAfterGc() {
      // A full, synchronous collection: what survives it is what the process still references.
      await send('HeapProfiler.collectGarbage');
      const { result } = (await send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
        result: { value: string };
      };
      const usage = JSON.parse(result.value) as NodeJS.MemoryUsage;
      return { heapUsed: usage.heapUsed, external: usage.external, rss: usage.rss };
    },
    close: () => socket.close(),
  };
}
