// The real ML libraries for the tests that check the service against them (XGBoost's predict(),
// torch's forward pass): Debian's packages, installed by scripts/ensure-python-ml.sh when missing.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const ENSURE = fileURLToPath(new URL('../../scripts/ensure-python-ml.sh', import.meta.url));
/** Debian's Python, which imports Debian's packages (a pyenv python3 on the PATH would not). */
export const PYTHON = '/usr/bin/python3';

/** Installs the packages when missing; the reason to skip when they cannot be installed here, else false. */
export async function pythonMlSkipReason(): Promise<string | false> {
  try {
    await run('sh', [ENSURE]);
    return false;
  } catch (err) {
    const { code, stderr } = err as { code?: number; stderr?: string };
    if (code === 2) return `xgboost and torch are not installed and cannot be installed here: ${stderr?.trim()}`;
    throw new Error(`scripts/ensure-python-ml.sh failed: ${stderr ?? String(err)}`, { cause: err });
  }
}
