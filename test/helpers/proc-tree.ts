// The processes a process started, read from /proc (Linux): for tests that check a stop
// leaves nothing behind.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export type ProcInfo = {
  pid: number;
  ppid: number;
  argv: string[];
  /** The working directory; redis-server's is its --dir (it rewrites its argv to `redis-server host:port`). */
  cwd: string | undefined;
};

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces; the fields after its ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined; // a zombie has exited; only its exit status is left
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    let cwd: string | undefined;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      cwd = undefined; // another user's process
    }
    return { pid, ppid: Number(fields[1]), argv, cwd };
  } catch {
    return undefined; // gone between listing and reading
  }
}

export function allProcesses(): ProcInfo[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((p): p is ProcInfo => p !== undefined);
}

/** Every living descendant of pid. */
export function descendants(pid: number): ProcInfo[] {
  const all = allProcesses();
  const found: ProcInfo[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const children = all.filter((p) => frontier.includes(p.ppid));
    found.push(...children);
    frontier = children.map((p) => p.pid);
  }
  return found;
}

export function isAlive(pid: number): boolean {
  return readProc(pid) !== undefined;
}
