// Reading the deployment files (Dockerfiles, docker-compose.yml) for the checks of
// test/deploy/, and the one rule for which environment variables they may set.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { ENV_VARIABLES } from '../../src/shared/config.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const readRepoFile = (path: string) => readFileSync(ROOT + path, 'utf8');

/** A variable the service reads: one of src/shared/config.ts, or OTEL_* (read by the OpenTelemetry SDK itself). */
export function isServiceVariable(name: string): boolean {
  return ENV_VARIABLES.includes(name) || name.startsWith('OTEL_');
}

export function dockerfile(path: string) {
  const instructions = DockerfileParser.parse(readRepoFile(path)).getInstructions();
  const all = (keyword: string) => instructions.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? '');
  return { all, one: (keyword: string) => all(keyword).at(-1) ?? '' };
}

export type ComposeService = {
  image?: string;
  command?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  build?: { dockerfile: string };
};

export function readCompose(): { services: Record<string, ComposeService>; volumes: Record<string, unknown> } {
  // Compose reads YAML merge keys (<<: *worker): the pools share one worker definition.
  return parseYaml(readRepoFile('docker-compose.yml'), { merge: true });
}
