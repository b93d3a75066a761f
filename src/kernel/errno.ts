/** errno numbers to their names (`EPERM`, `EINVAL`), from the running platform's table. */
import { constants } from 'node:os';

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) if (!NAMES.has(value)) NAMES.set(value, name);

/** `EINVAL` for 22 on Linux; `errno N` for a number the platform does not name. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`;
}
