import type { PullResult } from '../queue/pull-status.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { flmRegistryEntry } from '../sources/flm/flm-registry-entry.js';
import type { FlmSource } from '../sources/flm/flm-source.js';
import type { PullJobContext } from './hf-pull.js';
import { PullProgressTracker } from './pull-progress.js';

/**
 * An FLM tag pull, worker side: `flm pull <tag>` with its progress turned into the same status
 * fields as a Hub pull, then hal0's registry row for the tag (content first: FLM has written
 * and verified the files by the time it exits 0).
 */
export async function runFlmPull(deps: { flm: FlmSource; registry: RegistryStore }, job: PullJobContext): Promise<PullResult> {
  const tag = job.data.model_id;
  const info = await deps.flm.tagInfo(tag);
  const tracker = new PullProgressTracker([{ hf_filename: tag, kind: 'model', bytes_total: info.size, bytes_done: 0 }], job.report);
  tracker.worker = job.workerName;
  await tracker.flush();
  const result = await deps.flm.pull(tag, {
    signal: job.signal,
    onProgress: (p) => {
      tracker.files[0].bytes_total = p.bytesTotal || tracker.files[0].bytes_total;
      tracker.setFileBytes(0, p.bytesDone);
    },
  });
  tracker.state = 'verifying';
  tracker.files[0].bytes_done = tracker.files[0].bytes_total = result.bytesTotal || tracker.files[0].bytes_total;
  await tracker.flush();
  const entry = flmRegistryEntry(result, info);
  await deps.registry.mutate((draft) => draft.set(entry));
  tracker.state = 'completed';
  await tracker.flush({ finished_at: Math.floor(Date.now() / 1000), path: entry.path });
  if (result.alreadyPresent) job.log(`${tag}: FLM already had the model`);
  return { model_id: tag, path: entry.path, bytes: entry.size_bytes ?? 0 };
}
