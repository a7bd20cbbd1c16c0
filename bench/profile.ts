// Reads the .cpuprofile files `node --cpu-prof` writes and says where a process's main thread
// spent its time during one window (the measured step, not start-up or warm-up). Two views:
// self time by area (npm package, src file, node module, GC), and time by origin, where node
// internals and native calls (socket writes, JSON) are charged to the nearest package or src
// file up the stack that called them. Idle time is left out: shares are of busy time. Work
// onnxruntime does on its own threads is not in the profile; /proc CPU time covers it.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './processes.ts';

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};

type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

type Share = { area: string; share: number };

export type ProfileSummary = {
  file: string;
  window_ms: number;
  busy_ms: number;
  by_area: Share[];
  by_origin: Share[];
  top_functions: { function: string; where: string; share: number }[];
};

/** Microseconds on the clock `--cpu-prof` stamps samples with (CLOCK_MONOTONIC, shared by every process). */
export function profileClockUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function pathOf(url: string): string {
  return url.startsWith('file://') ? relative(ROOT, new URL(url).pathname) : url;
}

/** The package, src file or node module a frame belongs to; undefined for frames with no script. */
function areaOf(frame: ProfileNode['callFrame']): string | undefined {
  const { url } = frame;
  if (!url) return undefined;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' && parts[1] ? `internal/${parts[1]}` : parts[0]}`;
  }
  return pathOf(url);
}

function isUserland(area: string | undefined): boolean {
  return area !== undefined && !area.startsWith('node:');
}

export function summarizeProfile(file: string, window?: { startUs: number; endUs: number }, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const startUs = window?.startUs ?? profile.startTime;
  const endUs = window?.endUs ?? profile.endTime;
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < startUs || t > endUs) continue;
    // timeDeltas[i + 1] is how long the thread stayed where samples[i] found it.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }

  const areaMemo = new Map<number, string>();
  /** Self area: a native frame belongs to its caller's area. */
  const selfArea = (id: number): string => {
    const frame = byId.get(id)!.callFrame;
    const own = areaOf(frame);
    if (own) return own;
    if (frame.functionName.startsWith('(')) return frame.functionName;
    const up = parent.get(id);
    return up === undefined ? 'native' : selfArea(up);
  };
  /** Origin: the nearest npm package or src file on the stack; node and native frames defer to it. */
  const originArea = (id: number): string => {
    const memo = areaMemo.get(id);
    if (memo) return memo;
    const frame = byId.get(id)!.callFrame;
    let result: string;
    if (frame.functionName.startsWith('(') && !frame.url) result = frame.functionName;
    else {
      let cursor: number | undefined = id;
      let found: string | undefined;
      while (cursor !== undefined && !found) {
        const area = areaOf(byId.get(cursor)!.callFrame);
        if (isUserland(area)) found = area;
        cursor = parent.get(cursor);
      }
      result = found ?? `node (event loop, sockets) ${selfArea(id)}`;
    }
    areaMemo.set(id, result);
    return result;
  };

  const areas = new Map<string, number>();
  const origins = new Map<string, number>();
  const functions = new Map<string, { function: string; where: string; us: number }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(root)') continue;
    busy += us;
    const area = selfArea(id);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const origin = originArea(id);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const where = frame.url ? `${pathOf(frame.url)}:${frame.lineNumber + 1}` : '(native)';
    const key = `${frame.functionName}@${where}`;
    const f = functions.get(key) ?? { function: frame.functionName || '(anonymous)', where, us: 0 };
    f.us += us;
    functions.set(key, f);
  }
  const share = (us: number) => (busy > 0 ? Math.round((us / busy) * 1000) / 1000 : 0);
  const ranked = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, us]) => ({ area, share: share(us) }));
  return {
    file: relative(ROOT, file),
    window_ms: Math.round((endUs - startUs) / 1000),
    busy_ms: Math.round(busy / 1000),
    by_area: ranked(areas),
    by_origin: ranked(origins),
    top_functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ function: f.function, where: f.where, share: share(f.us) })),
  };
}

/** The newest .cpuprofile in dir, or undefined. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  return files.length > 0 ? join(dir, files.at(-1)!) : undefined;
}
