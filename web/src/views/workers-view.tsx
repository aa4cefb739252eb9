import { ErrorNote, usePoll, View } from '../components.js';
import { formatAge } from '../format.js';
import type { WorkerView } from '../types.js';

/** The workers on this Ferry's queues (BullMQ's view of Redis), what each runs, and bull-board. */
export function WorkersView() {
  const workers = usePoll<{ count: number; workers: WorkerView[] }, { count: number; workers: WorkerView[] }>('/api/workers', 3000, (b) => b);
  const list = workers.data?.workers ?? [];
  return (
    <View id="workers" title="Workers" actions={<a href="/admin/queues">Queue dashboard (/admin/queues)</a>}>
      <ErrorNote error={workers.error} />
      {workers.data && (
        <p aria-live="polite">
          {workers.data.count === 0 ? 'No worker is connected: pulls stay queued until one starts (`ferry worker`).' : `${workers.data.count} worker${workers.data.count === 1 ? '' : 's'} connected.`}
        </p>
      )}
      {list.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Queues</th>
                <th scope="col">Up</th>
                <th scope="col">Running</th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr>
                  <th scope="row">
                    {w.name}
                    {!w.connected && <span class="badge failed"> gone</span>}
                  </th>
                  <td>{w.queues.join(', ') || '—'}</td>
                  <td>{w.connected ? formatAge(w.age_s) : '—'}</td>
                  <td>
                    {w.jobs.length === 0
                      ? 'idle'
                      : w.jobs.map((j) => (
                          <div>
                            {j.queue} {j.model_id ?? ''}
                            {j.slot ? ` (slot ${j.slot})` : ''}
                            {j.started_at ? `, ${formatAge((Date.now() - j.started_at) / 1000)}` : ''}
                          </div>
                        ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </View>
  );
}
