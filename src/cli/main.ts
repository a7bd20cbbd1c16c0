#!/usr/bin/env node
// `scoring`: the scoring service from a terminal or a script. Online predictions, bulk jobs
// from files of any size with progress, their status and results. Exit codes: exit-codes.ts.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, Option } from 'commander';
import { loadCliConfig } from './config.ts';
import { JOB_STATUSES, type JobStatus, type JobStatusName } from '../shared/schemas/bulk-job.ts';
import type { FraudRecord } from '../shared/schemas/record.ts';
import {
  contentTypeFor,
  formatForPath,
  isTerminal,
  JobEndedError,
  ScoringClient,
  ScoringError,
  UnreachableError,
  UPLOAD_EXTENSIONS,
  type ResultsFormat,
} from '../client/index.ts';
import { EXIT, UsageError } from './exit-codes.ts';
import { reportError } from './report-error.ts';
import { createProgress, type Progress } from './progress.ts';

/** How often a waiting submit asks for the job's progress. */
const POLL_INTERVAL_MS = 500;
/** Records per /predict/batch call for `predict --file` (the service's default MAX_BATCH_RECORDS). */
const PREDICT_BATCH = 1000;

const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value) + '\n');
};

type GlobalOptions = { url?: string; apiKey?: string; progress: boolean };

function clientOf(command: Command): ScoringClient {
  const opts = command.optsWithGlobals<GlobalOptions>();
  const env = loadCliConfig();
  return new ScoringClient({ url: opts.url ?? env.url, apiKey: opts.apiKey ?? env.apiKey });
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not JSON: ${(err as Error).message}`);
  }
}

function formatOption(): Option {
  return new Option('--format <format>', "results as csv or ndjson (default: from --out's extension, else ndjson)").choices(['csv', 'ndjson']);
}

function resultsFormat(format: string | undefined, out: string | undefined): ResultsFormat {
  return (format as ResultsFormat | undefined) ?? (out ? formatForPath(out) : 'ndjson');
}

/** Scores an NDJSON file in batches; a record's `id` (bulk files have them) is echoed, not sent. */
async function predictFile(client: ScoringClient, file: string, batchSize: number): Promise<void> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let batch: FraudRecord[] = [];
  let ids: (string | undefined)[] = [];
  let n = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const { results, model_version } = await client.predictBatch(batch);
    results.forEach((r, i) => print(ids[i] === undefined ? { ...r, model_version } : { id: ids[i], ...r, model_version }));
    batch = [];
    ids = [];
  };
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    const { id, ...record } = parseJson(line, `${file} line ${n}`) as FraudRecord & { id?: string };
    batch.push(record);
    ids.push(id);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
}

/** Ctrl-C from here on leaves the job running and says how to pick it up again. */
function leaveRunningOnInterrupt(jobId: string, out: string | undefined, progress: Progress): void {
  process.once('SIGINT', () => {
    progress.stop();
    const target = out ?? 'results.csv';
    process.stderr.write(
      `\nInterrupted. Job ${jobId} keeps running on the service.\n` +
        `  progress: scoring status ${jobId}\n` +
        `  results:  scoring results ${jobId} --out ${target}   (continues a partial file)\n` +
        `  stop it:  scoring cancel ${jobId}\n`,
    );
    process.exit(EXIT.interrupted);
  });
}

/** A wait outlives this long a service that does not answer or asks to come back (503, 429). */
const WAIT_OUTAGE_MS = 60_000;

function isPassing(err: unknown): boolean {
  return err instanceof UnreachableError || (err instanceof ScoringError && (err.status === 503 || err.status === 429));
}

/** The job's status; while the service is briefly away (a restart, Redis failing over), asks again. */
async function statusRiding(client: ScoringClient, jobId: string, progress: Progress): Promise<JobStatus> {
  const since = Date.now();
  for (;;) {
    try {
      return await client.jobStatus(jobId);
    } catch (err) {
      if (!isPassing(err) || Date.now() - since > WAIT_OUTAGE_MS) throw err;
      progress.note(`the service is away (${(err as Error).message}); asking again`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Polls the job until it has completed; a job that failed or was cancelled is an error. */
async function waitUntilCompleted(client: ScoringClient, jobId: string, progress: Progress): Promise<JobStatus> {
  for (;;) {
    const status = await statusRiding(client, jobId, progress);
    progress.update('scoring', status.progress.done, status.progress.total);
    if (status.status === 'completed') return status;
    if (isTerminal(status.status)) {
      progress.stop();
      throw new JobEndedError(status.job_id, status.status, status.error);
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

async function download(client: ScoringClient, jobId: string, out: string, format: ResultsFormat, progress: Progress) {
  const { total, resumedFrom } = await client.downloadResults(jobId, out, {
    format,
    onProgress: (written, all) => progress.update('download', written, all),
  });
  progress.stop();
  const resumed = resumedFrom > 0 ? ` (continued after ${resumedFrom} already there)` : '';
  process.stderr.write(`wrote ${total} results of job ${jobId} to ${out}${resumed}\n`);
}

export function buildProgram(): Command {
  const program = new Command('scoring')
    .description('Client of the scoring service: online predictions and bulk jobs')
    .option('--url <url>', 'base URL of the api (env SCORING_URL, default http://127.0.0.1:8080)')
    .option('--api-key <key>', 'bearer key when the api has API_KEYS (env SCORING_API_KEY)')
    .option('--no-progress', 'no progress bars or progress lines on stderr')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok; 1 the service answered an error or the job failed/was cancelled;\n' +
        '2 usage error (arguments, input file); 3 the service does not answer; 130 interrupted (Ctrl-C).',
    )
    .showHelpAfterError()
    .exitOverride();

  program
    .command('predict')
    .description('score records online: one JSON record as an argument, or --file records.ndjson; prints JSON lines')
    .argument('[record]', 'a record as JSON, e.g. \'{"transaction_amount":12.5,...}\'')
    .option('--file <path>', 'an NDJSON file of records, scored in batches')
    .option('--timeout-ms <ms>', 'how long the service waits for a worker (1..30000)', (v) => Number(v))
    .action(async (record: string | undefined, opts: { file?: string; timeoutMs?: number }, command: Command) => {
      const client = clientOf(command);
      if (opts.file && record) throw new UsageError('give a record or --file, not both');
      if (opts.file) return predictFile(client, opts.file, PREDICT_BATCH);
      if (!record) throw new UsageError('give a record as JSON, e.g. scoring predict \'{"transaction_amount": 12.5, ...}\', or --file');
      const value = parseJson(record, 'the record');
      if (Array.isArray(value)) {
        const { results, model_version } = await client.predictBatch(value as FraudRecord[]);
        for (const r of results) print({ ...r, model_version });
      } else {
        print(await client.predict(value as FraudRecord, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }));
      }
    });

  program
    .command('submit')
    .description('submit a file as a bulk job (streamed from disk); prints the job, or with --wait its end')
    .argument('<file>', `records: ${UPLOAD_EXTENSIONS.join(' ')} (CSV with a header row)`)
    .option('--model <name>', "the model to score with (default: the service's)")
    .option('--idempotency-key <key>', 'the same key returns the same job')
    .option('--wait', 'wait until the job has finished, with progress')
    .option('--out <file>', 'write the results here when done (implies --wait; continues a partial file)')
    .addOption(formatOption())
    .action(
      async (file: string, opts: { model?: string; idempotencyKey?: string; wait?: boolean; out?: string; format?: string }, command: Command) => {
        if (!contentTypeFor(file)) throw new UsageError(`${file}: the file name must end in ${UPLOAD_EXTENSIONS.join(', ')}`);
        const client = clientOf(command);
        const progress = createProgress(command.optsWithGlobals<GlobalOptions>().progress ? 'auto' : 'none');
        let accepted;
        try {
          accepted = await client.submitJob(file, {
            model: opts.model,
            idempotencyKey: opts.idempotencyKey,
            onUploadProgress: (sent, total) => progress.update('upload', sent, total),
          });
        } catch (err) {
          progress.stop();
          process.exitCode = await reportError(err, file);
          return;
        }
        if (!opts.wait && !opts.out) {
          progress.stop();
          print(accepted);
          return;
        }
        // The handler before the line that announces it: a SIGINT that comes between them would
        // otherwise meet Node's default action and kill the CLI without a word.
        leaveRunningOnInterrupt(accepted.job_id, opts.out, progress);
        progress.note(`job ${accepted.job_id} accepted; waiting for it (Ctrl-C leaves it running)`);
        const status = await waitUntilCompleted(client, accepted.job_id, progress);
        if (opts.out) await download(client, status.job_id, opts.out, resultsFormat(opts.format, opts.out), progress);
        progress.stop();
        print(status);
      },
    );

  program
    .command('status')
    .description('status and progress of a job')
    .argument('<job-id>')
    .action(async (jobId: string, _opts: unknown, command: Command) => print(await clientOf(command).jobStatus(jobId)));

  program
    .command('results')
    .description('results of a job, once it has completed (waits for it): to --out (continues a partial file) or to stdout')
    .argument('<job-id>')
    .option('--out <file>', 'write them to this file')
    .addOption(formatOption())
    .action(async (jobId: string, opts: { out?: string; format?: string }, command: Command) => {
      const client = clientOf(command);
      const format = resultsFormat(opts.format, opts.out);
      const progress = createProgress(opts.out && command.optsWithGlobals<GlobalOptions>().progress ? 'auto' : 'none');
      leaveRunningOnInterrupt(jobId, opts.out, progress);
      await waitUntilCompleted(client, jobId, progress);
      if (opts.out) return download(client, jobId, opts.out, format, progress);
      const body = await client.resultsStream(jobId, format);
      await pipeline(Readable.fromWeb(body as WebReadableStream), process.stdout);
    });

  program
    .command('cancel')
    .description('cancel a queued or running job')
    .argument('<job-id>')
    .action(async (jobId: string, _opts: unknown, command: Command) => print(await clientOf(command).cancel(jobId)));

  program
    .command('jobs')
    .description("the caller's jobs, newest first, one JSON line each")
    .addOption(new Option('--status <status>', 'only jobs in this status').choices(JOB_STATUSES))
    .option('--limit <n>', 'at most this many', (v) => Number(v))
    .option('--cursor <cursor>', 'continue a listing (printed to stderr when there is more)')
    .action(async (opts: { status?: JobStatusName; limit?: number; cursor?: string }, command: Command) => {
      const { jobs, next_cursor } = await clientOf(command).listJobs(opts);
      for (const job of jobs) print(job);
      if (next_cursor) process.stderr.write(`more: scoring jobs --cursor ${next_cursor}\n`);
    });

  const models = program
    .command('models')
    .description('the models of the repository, one JSON line each: versions, aliases, routing (canary, shadow)')
    .action(async (_opts: unknown, command: Command) => {
      for (const model of await clientOf(command).listModels()) {
        const { name, aliases, routing, default_version } = model;
        const versions = model.versions.map((v) => ({
          version: v.version,
          state: v.state,
          ...(v.display_version ? { display_version: v.display_version } : {}),
        }));
        print({ name, default_version, aliases, routing, versions });
      }
    });
  models
    .command('compare')
    .description("how a model's shadow version compares with the version that answered: agreement, mean and p99 |score difference|")
    .argument('<name>')
    .action(async (name: string, _opts: unknown, command: Command) => print(await clientOf(command).shadowSummary(name)));

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(err);
  }
}

// `scoring results <id> | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});
process.exitCode = await main(process.argv);
