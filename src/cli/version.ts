/**
 * `redis-ha --version` (`-V`): the package version and the advert wire-format version,
 * e.g. `redis-ha 0.1.0 (advert format 3)`. Two nodes must speak the same advert format
 * (README "Upgrading the daemons"); the package version says which build runs.
 *
 * The package version is read from `package.json` at run time, two levels above this
 * file: `dist/cli/version.js` → `package.json` in a checkout, and the same relative place
 * in the installed tree (`scripts/install.sh` copies `dist/` and `package.json` side by
 * side into the prefix, as `npm install` does). Imported only when `--version` is given.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADVERT_VERSION } from '../proto/advert.js';
import { describeFsError } from '../config/secret-file.js';
import { errorMessage } from '../errors.js';

/** The package's name, as `package.json` must spell it for its version to be taken. */
const PACKAGE_NAME = 'redis-ha';

/** Where the package's `package.json` is, for this module's location. */
export function packageJsonPath(moduleUrl: string = import.meta.url): string {
  return fileURLToPath(new URL('../../package.json', moduleUrl));
}

/** The package version from `package.json` at `path`, or why it could not be read. */
export function readPackageVersion(path: string): { version: string } | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { error: `cannot read ${path}: ${describeFsError(error)}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    return { error: `${path} is not JSON: ${errorMessage(error)}` };
  }
  const { name, version } = (typeof doc === 'object' && doc !== null ? doc : {}) as { name?: unknown; version?: unknown };
  if (name !== PACKAGE_NAME) return { error: `${path} is not ${PACKAGE_NAME}'s package.json (name ${JSON.stringify(name ?? null)})` };
  if (typeof version !== 'string' || version === '') return { error: `${path} has no version (got ${JSON.stringify(version ?? null)})` };
  return { version };
}

/** The `--version` line and, when the package version is unknown, the reason (for stderr). */
export function versionLine(path: string = packageJsonPath()): { line: string; error: string | null } {
  const found = readPackageVersion(path);
  const version = 'version' in found ? found.version : 'version unknown';
  return { line: `${PACKAGE_NAME} ${version} (advert format ${ADVERT_VERSION})`, error: 'error' in found ? found.error : null };
}
