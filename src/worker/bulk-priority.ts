// A worker that drains only bulk chunks (WORKER_QUEUES=bulk) asks the kernel to run it after
// everything else: where it shares cores with an online worker and the api (one host, or a node
// without CPU limits), a CPU-bound bulk process at the same priority makes every online process
// wait its turn for the core, and an online call waits a scheduling slice at each hop. Lowering
// one's own priority needs no privilege. A worker that also drains online calls keeps its
// priority: its own gate (OnlineFirst) already puts online work first inside it.
import { constants, setPriority } from 'node:os';
import type { LogSink } from '../shared/logger.ts';

/** PRIORITY_BELOW_NORMAL: nice 10, low enough to yield to the online processes, not idle. */
export const BULK_PRIORITY = constants.priority.PRIORITY_BELOW_NORMAL;

export function lowerPriorityIfBulkOnly(queues: readonly string[], logger: LogSink): void {
  if (queues.includes('online')) return;
  try {
    setPriority(BULK_PRIORITY);
    logger.info({ nice: BULK_PRIORITY }, 'bulk-only worker: lowered its CPU priority so online processes run first');
  } catch (err) {
    logger.warn({ err }, 'could not lower the CPU priority of this bulk-only worker');
  }
}
