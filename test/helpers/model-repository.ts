// Model repositories for end-to-end tests: a temp folder holding copies of committed models, and
// versions written into it the way a deploy would (whole files, never half a file).
import { cp, mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COMMITTED = new URL('../../models/', import.meta.url).pathname;

/** A new temp repository holding copies of the named committed models; the caller removes it. */
export async function tempRepository(prefix: string, models: readonly string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `${prefix}-`));
  for (const name of models) await cp(join(COMMITTED, name), join(root, name), { recursive: true });
  return root;
}

/** Writes `<root>/<name>/<version>/model.onnx`: beside, then renamed, so a poll never reads half a file. */
export async function writeVersion(root: string, name: string, version: number, bytes: Uint8Array | string): Promise<void> {
  await mkdir(join(root, name, String(version)), { recursive: true });
  const file = join(root, name, String(version), 'model.onnx');
  await writeFile(`${file}.tmp`, bytes);
  await rename(`${file}.tmp`, file);
}
