// A port that cannot be had is an operator's problem, not a crash: one line that names the
// port and the variable that sets it, instead of a stack trace.

export function listenFailure(role: string, variable: string, host: string, port: number, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return `${role}: port ${port} is already in use; stop what holds it or set ${variable} to a free port`;
  if (code === 'EACCES') return `${role}: no permission to listen on port ${port}; set ${variable} to a port above 1023`;
  if (code === 'EADDRNOTAVAIL') return `${role}: ${host} is not an address of this host; set HOST`;
  return `${role}: cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`;
}
