// The thread bulk slices run on (bulk-runner.ts starts it). With BULK_THREAD_NICE set it lowers
// its own CPU priority first: on Linux a thread's nice value is its own, so the kernel then runs
// this worker's online batches, its event loop and the other online processes before a bulk slice.
// It opens each version it is sent from that version's source (the same graph bytes and manifest
// the main thread opened) and answers one message per slice.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { openModelVersion, type ModelVersion } from './model-version.ts';
import type { RunnerReply, RunnerRequest, RunnerSettings } from './bulk-runner.ts';

const port = parentPort!;
const settings = workerData as RunnerSettings;
if (settings.nice !== 0) {
  try {
    setPriority(0, settings.nice); // pid 0: this thread only (Linux)
  } catch {
    // Not allowed here: the slices still run, at the worker's own priority.
  }
}

const versions = new Map<string, Promise<ModelVersion>>();

async function answer(request: RunnerRequest): Promise<RunnerReply | undefined> {
  switch (request.type) {
    case 'open': {
      const model = openModelVersion(request.source);
      // A version that fails to open fails each slice sent to it, not the thread.
      model.catch(() => undefined);
      versions.set(request.key, model);
      return undefined;
    }
    case 'drop': {
      const model = versions.get(request.key);
      versions.delete(request.key);
      await model?.then((m) => m.retire()).catch(() => undefined);
      return undefined;
    }
    case 'scoreEncoded': {
      const model = await opened(request.key);
      const probabilities = await model.scoreEncoded(request.features, request.rows);
      return { id: request.id, ok: true, probabilities };
    }
    case 'run': {
      const model = await opened(request.key);
      return { id: request.id, ok: true, outputs: await model.run(request.records) };
    }
  }
}

function opened(key: string): Promise<ModelVersion> {
  const model = versions.get(key);
  if (!model) throw new Error(`version ${key} was not sent to the bulk thread`);
  return model;
}

port.on('message', (request: RunnerRequest) => {
  answer(request).then(
    (reply) => {
      if (!reply) return;
      port.postMessage(reply, reply.ok && reply.probabilities ? [reply.probabilities.buffer as ArrayBuffer] : []);
    },
    (err: unknown) => {
      if (request.type === 'scoreEncoded' || request.type === 'run') {
        const error = err as Error;
        port.postMessage({ id: request.id, ok: false, name: error.name, message: error.message } satisfies RunnerReply);
      }
    },
  );
});
