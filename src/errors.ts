/** An error the user can act on: printed as one line, exit code 1, no stack. */
export class QuestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuestError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
