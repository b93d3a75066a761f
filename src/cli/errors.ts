/** An error the user caused (bad argument, bad file): printed without a stack, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
