import type { FerryContext } from './create-context.js';

export interface RunningWorkers {
  close(): Promise<void>;
}

/** Starts this process's workers. Filled in by the pull pipeline (issue #3). */
export async function startWorkers(_ctx: FerryContext): Promise<RunningWorkers> {
  return { close: async () => undefined };
}
