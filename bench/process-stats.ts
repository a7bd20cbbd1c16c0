// What the bench reads about its own child processes from /proc (Linux): resident memory and
// CPU time. Peak RSS is sampled (VmRSS every interval) so a peak can be taken over one phase,
// not only over the process's life, which is all VmHWM gives.
import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_S = 100; // USER_HZ: 100 on every Linux the bench targets.

/** A field of /proc/<pid>/status in MB (VmRSS, VmHWM), or undefined once the process is gone. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) the process has used so far, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing paren are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

export type RssSampler = {
  /** Highest VmRSS seen since start, in MB, per pid. */
  peaks: () => Map<number, number>;
  stop: () => void;
};

/** Samples VmRSS of each pid every intervalMs until stop(). */
export function sampleRss(pids: number[], intervalMs = 100): RssSampler {
  const peaks = new Map<number, number>();
  const sample = () => {
    for (const pid of pids) {
      const mb = statusMb(pid, 'VmRSS');
      if (mb !== undefined && mb > (peaks.get(pid) ?? 0)) peaks.set(pid, mb);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    peaks: () => {
      sample();
      return peaks;
    },
    stop: () => clearInterval(timer),
  };
}

export type CpuMeter = {
  /** Cores used by each named process since start (CPU seconds / wall seconds). */
  stop: () => Record<string, number>;
};

/** Measures the share of a core each named process (pid 0: this process) used over a phase. */
export function meterCpu(processes: Record<string, number>): CpuMeter {
  const read = (pid: number) => (pid === 0 ? ownCpuSeconds() : (cpuSeconds(pid) ?? 0));
  const started = performance.now();
  const before = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, read(pid)]));
  return {
    stop: () => {
      const wallS = (performance.now() - started) / 1000;
      const cores: Record<string, number> = {};
      for (const [name, pid] of Object.entries(processes)) cores[name] = round((read(pid) - before[name]!) / wallS, 2);
      return cores;
    },
  };
}

function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
