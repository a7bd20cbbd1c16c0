// The table the bench prints: one block per measurement, the queue next to the baseline it is
// compared with, and the targets with the figure each one was judged on.
import type { TargetCheck } from './targets.ts';

type Row = {
  target: string;
  concurrency: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  avg_batch: number | null;
  redis_commands_per_request?: number;
  cpu_cores: Record<string, number>;
  cpu_ms_per_request: number | null;
};

type ClusterSideView = {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  redis_commands_per_prediction: number;
  redis_command_us_per_prediction: number;
  redis_process_us_per_prediction: number;
  cpu_ms_per_request: number;
};

export type ReportView = {
  machine: { cpu_model: string; cores: number; node: string; redis: string };
  settings: {
    run: string;
    step_seconds: number;
    online_workers: number;
    max_batch_size: number;
    max_batch_delay_ms: number;
    worker_concurrency: number;
  };
  online: Row[];
  batch: (Row & { records_per_request: number; records_per_s: number })[];
  bulk:
    | {
        available: true;
        records: number;
        seconds: number;
        records_per_s: number;
        submit_s: number;
        scoring_s: number;
        download_s: number;
        results: number;
        workers?: number;
        api_peak_rss_mb?: number;
        worker_peak_rss_mb?: number;
        cpu_cores_by_phase?: Record<string, Record<string, number>>;
      }
    | { available: false; reason: string };
  /** The same job pinned to fraud version 2 (XGBoost); absent in reports from before it was measured. */
  bulk_xgboost?: { available: true; records: number; seconds: number; records_per_s: number } | { available: false; reason: string };
  scaling: { workers: number; rps: number; p99_ms: number; avg_batch: number | null; cpu_ms_per_request: number | null }[];
  protocols: {
    concurrency: number;
    rest_ratios: number[];
    grpc_ratios: number[];
    median_rest_ratio: number;
    median_grpc_ratio: number;
    /** Absent in reports from before issue 21. */
    api_cpu_us_per_call?: Record<string, number[]>;
    grpc_api_cpu_ratios?: number[];
    median_grpc_api_cpu_ratio?: number;
  };
  tensor_batch?: {
    records_per_call: number;
    concurrency: number;
    medians: Record<string, { records_per_s: number; api_cpu_us_per_record: number }>;
    grpc_ratios: number[];
    median_grpc_ratio: number;
    errors: number;
  } | null;
  grpc_front: {
    concurrency: number;
    predict_api_cpu_us_per_call: number | null;
    rows: { front: string; rps: number; p99_ms: number; errors: number; cpu_us_per_call: number }[];
  };
  redis_commands_per_prediction: number | null;
  redis: { census: { client_commands_per_prediction: number; script_commands_per_prediction: number } };
  telemetry: { on_rps: number; off_rps: number; ratio: number; on_cpu_ms_per_request: number; off_cpu_ms_per_request: number } | null;
  cluster: {
    shards: number;
    concurrency: number;
    single: ClusterSideView;
    cluster: ClusterSideView;
  } | null;
  latency_breakdown_c1: Record<'total' | 'queue' | 'batch' | 'inference' | 'rest', { mean_ms: number; p50_ms: number; p99_ms: number }>;
  profile: {
    rps: number;
    api: ProfileView | null;
    worker: ProfileView | null;
    bulk: { records: number; api_submit: ProfileView | null; worker_scoring: ProfileView | null } | null;
  } | null;
  targets: TargetCheck[];
};

type ProfileView = { by_area: { area: string; share: number }[]; by_origin: { area: string; share: number }[] };

function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

function cpuText(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
}

export function printReport(report: ReportView): void {
  const out: string[] = [];
  const { machine, settings } = report;
  out.push(
    '',
    `Benchmark (${settings.run}): ${machine.cores} × ${machine.cpu_model}, Node ${machine.node}, Redis ${machine.redis}`,
    `${settings.online_workers} worker, MAX_BATCH_SIZE ${settings.max_batch_size}, MAX_BATCH_DELAY_MS ${settings.max_batch_delay_ms}, ` +
      `WORKER_CONCURRENCY ${settings.worker_concurrency}; ${settings.step_seconds} s per step; load from this process (autocannon for HTTP, node:http2 for gRPC)`,
    '',
    'Online, one record per call: POST /predict (queue), the baseline, the Open Inference Protocol (oip-rest: POST /v2/models/fraud/infer; oip-grpc: ModelInfer)',
  );
  const online = report.online;
  out.push(
    table(
      ['target', 'conc', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'avg batch', 'redis cmd/req', 'cpu ms/req', 'q/base'],
      online.map((r) => {
        const base = online.find((b) => b.target === 'baseline' && b.concurrency === r.concurrency);
        // OIP rows against /predict (the same path behind another protocol), the queue against the baseline.
        const predict = online.find((b) => b.target === 'queue' && b.concurrency === r.concurrency);
        const ratio =
          r.target === 'queue' && base && base.rps > 0
            ? (r.rps / base.rps).toFixed(2)
            : r.target.startsWith('oip-') && predict && predict.rps > 0
              ? `${(r.rps / predict.rps).toFixed(2)} of /predict`
              : '';
        return [
          r.target,
          r.concurrency,
          r.rps.toFixed(0),
          r.p50_ms.toFixed(2),
          r.p90_ms.toFixed(2),
          r.p99_ms.toFixed(2),
          r.max_ms.toFixed(1),
          r.errors,
          r.avg_batch,
          r.redis_commands_per_request,
          r.cpu_ms_per_request,
          ratio,
        ];
      }),
    ),
    '',
    'CPU (cores) per step',
    table(
      ['target', 'conc', 'cores used'],
      [...online, ...report.batch].map((r) => [r.target, r.concurrency, cpuText(r.cpu_cores)]),
    ),
    '',
    `The protocols against /predict at c=${report.protocols.concurrency}, rounds back to back: ` +
      `REST ${report.protocols.rest_ratios.join(', ')} (median ${report.protocols.median_rest_ratio}), ` +
      `gRPC ${report.protocols.grpc_ratios.join(', ')} (median ${report.protocols.median_grpc_ratio})`,
    ...(report.protocols.api_cpu_us_per_call
      ? [
          `  api CPU µs per call: ${Object.entries(report.protocols.api_cpu_us_per_call)
            .map(([t, v]) => `${t} ${v.join(', ')}`)
            .join('; ')}; gRPC / /predict ${report.protocols.grpc_api_cpu_ratios!.join(', ')} (median ${report.protocols.median_grpc_api_cpu_ratio})`,
        ]
      : []),
    ...(report.tensor_batch
      ? [
          `${report.tensor_batch.records_per_call}-record calls at c=${report.tensor_batch.concurrency} (medians of interleaved rounds): ` +
            Object.entries(report.tensor_batch.medians)
              .map(([t, m]) => `${t} ${m.records_per_s} records/s, api ${m.api_cpu_us_per_record} µs/record`)
              .join('; ') +
            `; ModelInfer / /predict/batch ${report.tensor_batch.grpc_ratios.join(', ')} (median ${report.tensor_batch.median_grpc_ratio}), errors ${report.tensor_batch.errors}`,
        ]
      : []),
    '',
    `The gRPC front alone, answering at once (no queue), c=${report.grpc_front.concurrency}: its CPU per call ` +
      `beside the api CPU of one /predict call (${report.grpc_front.predict_api_cpu_us_per_call ?? '-'} µs) in this run`,
    table(
      ['front', 'req/s', 'p99 ms', 'errors', 'cpu µs/call'],
      report.grpc_front.rows.map((r) => [r.front, r.rps.toFixed(0), r.p99_ms.toFixed(2), r.errors, r.cpu_us_per_call]),
    ),
    '',
    'POST /predict/batch',
  );
  out.push(
    table(
      ['target', 'records', 'conc', 'req/s', 'records/s', 'p50 ms', 'p99 ms', 'non-2xx', 'avg batch'],
      report.batch.map((r) => [
        r.target,
        r.records_per_request,
        r.concurrency,
        r.rps.toFixed(0),
        r.records_per_s,
        r.p50_ms.toFixed(2),
        r.p99_ms.toFixed(2),
        r.errors,
        r.avg_batch,
      ]),
    ),
    '',
  );
  const bulk = report.bulk;
  if (bulk.available) {
    out.push(
      `Bulk: ${bulk.records} records in ${bulk.seconds} s = ${bulk.records_per_s} records/s ` +
        `(submit ${bulk.submit_s} s, scoring ${bulk.scoring_s} s, download ${bulk.download_s} s; ${bulk.results} results; ` +
        `${bulk.workers} workers); peak RSS api ${bulk.api_peak_rss_mb} MB, worker ${bulk.worker_peak_rss_mb} MB`,
    );
    for (const [phase, cores] of Object.entries(bulk.cpu_cores_by_phase ?? {})) out.push(`  cores until ${phase}: ${cpuText(cores)}`);
  } else {
    out.push(`Bulk: not available (${bulk.reason})`);
  }
  const xgb = report.bulk_xgboost;
  if (xgb) {
    out.push(
      xgb.available
        ? `Bulk, fraud version 2 (XGBoost): ${xgb.records} records in ${xgb.seconds} s = ${xgb.records_per_s} records/s` +
            (bulk.available ? ` (version 1, the GBDT: ${bulk.records_per_s} records/s)` : '')
        : `Bulk, fraud version 2 (XGBoost): not available (${xgb.reason})`,
    );
  }
  out.push(
    '',
    'Scaling at c=64',
    table(
      ['workers', 'req/s', 'p99 ms', 'avg batch', 'cpu ms/req'],
      report.scaling.map((s) => [s.workers, s.rps.toFixed(0), s.p99_ms.toFixed(2), s.avg_batch, s.cpu_ms_per_request]),
    ),
    '',
    `Redis commands per online prediction at c=64: ${report.redis_commands_per_prediction} ` +
      `(MONITOR census: ${report.redis.census.client_commands_per_prediction} sent by clients, ` +
      `${report.redis.census.script_commands_per_prediction} run inside Lua scripts)`,
  );
  if (report.telemetry) {
    const t = report.telemetry;
    out.push(
      `Telemetry at c=64: on ${t.on_rps} req/s, off ${t.off_rps} req/s (on/off ${t.ratio}); ` +
        `CPU per request on ${t.on_cpu_ms_per_request} ms, off ${t.off_cpu_ms_per_request} ms`,
    );
  }
  if (report.cluster) {
    const c = report.cluster;
    out.push(
      '',
      `POST /predict c=${c.concurrency}: single Redis vs a local Redis Cluster (${c.shards} masters + replicas, ${c.shards} queue shards), same run`,
      table(
        ['redis', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'commands/pred', 'cmd µs/pred', 'redis CPU µs/pred', 'cpu ms/req'],
        (['single', 'cluster'] as const).map((side) => {
          const s = c[side];
          return [
            side,
            s.rps.toFixed(0),
            s.p50_ms.toFixed(2),
            s.p99_ms.toFixed(2),
            s.errors,
            s.redis_commands_per_prediction,
            s.redis_command_us_per_prediction,
            s.redis_process_us_per_prediction,
            s.cpu_ms_per_request,
          ];
        }),
      ),
    );
  }
  const b = report.latency_breakdown_c1;
  out.push(
    '',
    'c=1 latency by part (Server-Timing, sequential requests)',
    table(
      ['part', 'mean ms', 'p50 ms', 'p99 ms'],
      (['total', 'queue', 'batch', 'inference', 'rest'] as const).map((k) => [
        k === 'rest' ? 'rest (api, pub/sub reply, network)' : k,
        b[k].mean_ms.toFixed(2),
        b[k].p50_ms.toFixed(2),
        b[k].p99_ms.toFixed(2),
      ]),
    ),
  );
  if (report.profile) {
    const shares = (list: { area: string; share: number }[] | undefined) =>
      list
        ? list
            .slice(0, 6)
            .map((a) => `${a.area} ${(a.share * 100).toFixed(0)}%`)
            .join(', ')
        : 'no profile';
    const { api, worker } = report.profile;
    out.push(
      '',
      `Profile at c=64 (${report.profile.rps} req/s under --cpu-prof), main thread, by the package that caused the work:`,
      `  api:    ${shares(api?.by_origin)}`,
      `  worker: ${shares(worker?.by_origin)}`,
    );
    const bulk = report.profile.bulk;
    if (bulk) {
      out.push(
        `Profile of a ${bulk.records}-record bulk job, same view:`,
        `  api while it takes the body:  ${shares(bulk.api_submit?.by_origin)}`,
        `  worker while it scores:       ${shares(bulk.worker_scoring?.by_origin)}`,
      );
    }
  }
  out.push(
    '',
    'Targets',
    table(
      ['target', 'goal', 'value', 'met'],
      report.targets.map((t) => [t.name, t.goal, t.value, (t.met === null ? 'n/a' : t.met ? 'yes' : 'NO') + (t.note ? ` (${t.note})` : '')]),
    ),
    '',
  );
  process.stdout.write(out.join('\n'));
}
