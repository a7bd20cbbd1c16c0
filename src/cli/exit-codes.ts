// The exit codes a script can rely on (README, `scoring --help`).
export const EXIT = {
  ok: 0,
  /** The service answered with an error, or the job failed or was cancelled. */
  failed: 1,
  /** Bad arguments, an unreadable input file, a file that cannot be resumed into. */
  usage: 2,
  /** Nothing answers at the service's URL. */
  unreachable: 3,
  /** Ctrl-C (128 + SIGINT): a job being waited for keeps running. */
  interrupted: 130,
} as const;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
