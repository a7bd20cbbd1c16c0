// Progress of a submission on stderr (stdout stays clean for results and job ids): bars on a
// terminal, and on anything else (a CI log, a file) one plain line per phase every few seconds.
import cliProgress from 'cli-progress';

export type Phase = 'upload' | 'scoring' | 'download';

export interface Progress {
  update(phase: Phase, value: number, total: number): void;
  /** A line of its own, printed without tearing the bars. */
  note(text: string): void;
  stop(): void;
}

/** Plain lines at most this often per phase; the last value of a phase is always printed. */
const PLAIN_INTERVAL_MS = 2000;
/** Rates are measured over this recent window, so a slow start does not skew the ETA for ever. */
const RATE_WINDOW_MS = 10_000;

/** Units per second over the recent window, and the seconds left at that rate. */
export class RateMeter {
  readonly #samples: { t: number; v: number }[] = [];

  /** Records a value and returns the rate over the window. */
  sample(value: number, now = performance.now()): number {
    this.#samples.push({ t: now, v: value });
    while (this.#samples.length > 2 && now - this.#samples[0]!.t > RATE_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!;
    const seconds = (now - first.t) / 1000;
    return seconds > 0 ? (value - first.v) / seconds : 0;
  }

  eta(value: number, total: number, rate: number): number | undefined {
    return rate > 0 ? (total - value) / rate : undefined;
  }
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);

/** The text after the bar: what was done, how fast, how long still. */
function describe(phase: Phase, value: number, total: number, rate: number, eta: number | undefined): string {
  const pct = total > 0 ? Math.floor((value / total) * 100) : 100;
  const done = phase === 'upload' ? `${mb(value)}/${mb(total)} MB (${pct}%)` : `${value}/${total} records (${pct}%)`;
  // Rate and ETA only once there is a rate to tell, and while something is left.
  if (value >= total || rate <= 0) return done;
  return `${done}, ${phase === 'upload' ? `${mb(rate)} MB/s` : `${Math.round(rate)} records/s`}, ETA ${duration(eta)}`;
}

class BarProgress implements Progress {
  readonly #multibar = new cliProgress.MultiBar(
    {
      format: '{phase} [{bar}] {text}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      stream: process.stderr,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  readonly #bars = new Map<Phase, { bar: cliProgress.SingleBar; meter: RateMeter }>();

  update(phase: Phase, value: number, total: number): void {
    let entry = this.#bars.get(phase);
    if (!entry) {
      entry = { bar: this.#multibar.create(total, 0, { phase: phase.padEnd(8), text: '' }), meter: new RateMeter() };
      this.#bars.set(phase, entry);
    }
    const rate = entry.meter.sample(value);
    entry.bar.setTotal(total);
    entry.bar.update(value, { text: describe(phase, value, total, rate, entry.meter.eta(value, total, rate)) });
  }

  note(text: string): void {
    this.#multibar.log(text + '\n');
  }

  stop(): void {
    this.#multibar.stop();
  }
}

class LineProgress implements Progress {
  readonly #phases = new Map<Phase, { meter: RateMeter; printedAt: number; lastValue: number }>();

  update(phase: Phase, value: number, total: number): void {
    let entry = this.#phases.get(phase);
    if (!entry) {
      entry = { meter: new RateMeter(), printedAt: -Infinity, lastValue: -1 };
      this.#phases.set(phase, entry);
    }
    const now = performance.now();
    const rate = entry.meter.sample(value, now);
    const finished = value >= total && entry.lastValue !== value;
    if (finished || (now - entry.printedAt >= PLAIN_INTERVAL_MS && value !== entry.lastValue)) {
      entry.printedAt = now;
      entry.lastValue = value;
      process.stderr.write(`${phase}: ${describe(phase, value, total, rate, entry.meter.eta(value, total, rate))}\n`);
    }
  }

  note(text: string): void {
    process.stderr.write(text + '\n');
  }

  stop(): void {}
}

class NoProgress implements Progress {
  update(): void {}
  note(): void {}
  stop(): void {}
}

export function createProgress(mode: 'auto' | 'none' = 'auto'): Progress {
  if (mode === 'none') return new NoProgress();
  return process.stderr.isTTY ? new BarProgress() : new LineProgress();
}
