import type { Job, Queue } from 'bullmq';

/** One job a worker is running now, as the dashboard shows it (never the whole job data). */
export interface ActiveJobView {
  queue: string;
  id: string;
  model_id: string | null;
  slot: string | null;
  started_at: number | null;
}

/** A worker process as BullMQ sees it: its named Redis connections, grouped by name. */
export interface WorkerView {
  /** `host:pid` (the name Ferry's workers give BullMQ), or `unnamed` for a worker without one. */
  name: string;
  /** False for a name known only from an active job: its worker's connections are gone (it died; the job will stall over). */
  connected: boolean;
  host: string | null;
  pid: number | null;
  /** The queues it takes jobs from. */
  queues: string[];
  /** Seconds since its oldest connection was opened. */
  age_s: number;
  /** Seconds since any of its connections last sent a command (a blocked wait counts as busy). */
  idle_s: number;
  jobs: ActiveJobView[];
}

export interface WorkerServiceDeps {
  /** The pull, verify and warm queues; their names are what the dashboard shows. */
  queues: Queue[];
}

/** How many active jobs per queue are looked at; a worker's concurrency is far below this. */
const ACTIVE_LIMIT = 200;

/**
 * Who is connected and what each is doing, read from BullMQ: `Queue.getWorkers()` (Redis
 * CLIENT LIST, filtered to this prefix's queues) and the active jobs, whose `processedBy` is the
 * worker's name.
 */
export class WorkerService {
  constructor(private readonly deps: WorkerServiceDeps) {}

  async list(): Promise<WorkerView[]> {
    const byName = new Map<string, WorkerView>();
    for (const queue of this.deps.queues) {
      const [clients, active] = await Promise.all([queue.getWorkers(), queue.getActive(0, ACTIVE_LIMIT - 1)]);
      for (const client of clients) {
        const name = workerName(String(client.rawname ?? ''));
        const view = byName.get(name) ?? newView(name);
        byName.set(name, view);
        if (!view.queues.includes(queue.name)) view.queues.push(queue.name);
        view.age_s = Math.max(view.age_s, Number(client.age) || 0);
        view.idle_s = Math.min(view.idle_s, Number(client.idle) || 0);
      }
      for (const job of active) {
        const name = job.processedBy ?? 'unnamed';
        const view = byName.get(name) ?? newView(name);
        byName.set(name, view);
        view.jobs.push(jobView(queue.name, job));
      }
    }
    return [...byName.values()]
      .map((v) => ({ ...v, connected: v.queues.length > 0, idle_s: Number.isFinite(v.idle_s) ? v.idle_s : 0 }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** BullMQ names a worker's connection `<prefix>:<base64 queue>:w:<name>`; unnamed ones end at the queue. */
export function workerName(rawName: string): string {
  const at = rawName.indexOf(':w:');
  return at === -1 ? 'unnamed' : rawName.slice(at + 3);
}

function newView(name: string): WorkerView {
  const match = /^(.*):(\d+)$/.exec(name);
  return { name, connected: false, host: match ? match[1] : null, pid: match ? Number(match[2]) : null, queues: [], age_s: 0, idle_s: Infinity, jobs: [] };
}

function jobView(queue: string, job: Job): ActiveJobView {
  const data = (job.data ?? {}) as { model_id?: unknown; slot?: unknown; model?: unknown };
  const model = typeof data.model_id === 'string' ? data.model_id : typeof data.model === 'string' ? data.model : null;
  return { queue, id: String(job.id), model_id: model, slot: typeof data.slot === 'string' ? data.slot : null, started_at: job.processedOn ?? null };
}
