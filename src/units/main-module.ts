/**
 * Whether the module at `moduleUrl` (its `import.meta.url`) is the script
 * node was started with, so a generator such as `node dist/src/config/docs.js`
 * prints its output when run and stays quiet when imported by a test.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}
