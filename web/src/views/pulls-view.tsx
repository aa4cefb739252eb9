import { useEffect, useMemo, useState } from 'preact/hooks';
import { postJson, seg } from '../api.js';
import { ErrorNote, usePoll, View } from '../components.js';
import { etaSeconds, formatBytes, formatEta, formatRate } from '../format.js';
import { idFromFileName } from '../model-table.js';
import { isFinished, type PullTracker, type TrackedPull } from '../pull-tracker.js';
import type { CatalogueItem, ModelRow, PullStarted } from '../types.js';

interface Props {
  models: ModelRow[] | undefined;
  tracker: PullTracker;
}

type Outcome = { error: unknown } | { message: string } | null;

/** Start pulls (coordinates, an `hf.co/...` reference, the catalogue, FLM tags) and watch them. */
export function PullsView({ models, tracker }: Props) {
  const [outcome, setOutcome] = useState<Outcome>(null);
  const pulls = useTracked(tracker);

  const start = async (ref: string, body?: Record<string, unknown>) => {
    setOutcome(null);
    try {
      const started = await postJson<PullStarted>(`/api/models/${seg(ref)}/pull`, body ?? {});
      if (started.state === 'completed' && started.id === null) {
        setOutcome({ message: `${started.model_id} is already in the registry.` });
      } else {
        tracker.follow(started.model_id);
        setOutcome({ message: `${started.resumed ? 'Joined the pull of' : 'Pulling'} ${started.model_id}.` });
      }
    } catch (err) {
      setOutcome({ error: err });
    }
  };

  return (
    <View id="pulls" title="Pulls">
      <div class="columns">
        <CoordinatesForm onPull={(id, body) => void start(id, body)} />
        <ReferenceForm onPull={(ref) => void start(ref)} />
      </div>
      <div id="pull-outcome" aria-live="polite">
        {outcome && 'error' in outcome && <ErrorNote error={outcome.error} />}
        {outcome && 'message' in outcome && <p class="ok">{outcome.message}</p>}
      </div>
      <h3>In flight and recent</h3>
      {pulls.length === 0 ? (
        <p>No pulls yet.</p>
      ) : (
        <ul class="pulls">
          {pulls.map((p) => (
            <li key={p.status.model_id}>
              <PullCard pull={p} onCancel={() => tracker.cancel(p.status.model_id)} />
            </li>
          ))}
        </ul>
      )}
      <Catalogue models={models} onPull={(id) => void start(id)} />
    </View>
  );
}

function useTracked(tracker: PullTracker): TrackedPull[] {
  const [snapshot, setSnapshot] = useState(() => tracker.snapshot());
  useEffect(() => tracker.subscribe(() => setSnapshot(tracker.snapshot())), [tracker]);
  return snapshot;
}

function CoordinatesForm({ onPull }: { onPull: (id: string, body: Record<string, unknown>) => void }) {
  const [repo, setRepo] = useState('');
  const [file, setFile] = useState('');
  const [id, setId] = useState('');
  const derived = file && !/[*?[]/.test(file) ? idFromFileName(file) : '';
  return (
    <form
      class="card"
      aria-labelledby="pull-coords-heading"
      onSubmit={(e) => {
        e.preventDefault();
        onPull(id.trim() || derived, { hf_repo: repo.trim(), ...(file.trim() ? { hf_file: file.trim() } : {}) });
      }}
    >
      <h3 id="pull-coords-heading">Pull from Hugging Face</h3>
      <label for="pull-repo">Repository</label>
      <input id="pull-repo" required value={repo} placeholder="org/name" onInput={(e) => setRepo((e.target as HTMLInputElement).value)} />
      <label for="pull-file">File</label>
      <input id="pull-file" value={file} placeholder="model-q4_k_m.gguf or *q4_k_m*.gguf" onInput={(e) => setFile((e.target as HTMLInputElement).value)} />
      <label for="pull-id">Id</label>
      <input id="pull-id" value={id} placeholder={derived || 'lowercase-id'} required={!derived} onInput={(e) => setId((e.target as HTMLInputElement).value)} />
      <button type="submit">Pull</button>
    </form>
  );
}

function ReferenceForm({ onPull }: { onPull: (ref: string) => void }) {
  const [ref, setRef] = useState('');
  return (
    <form
      class="card"
      aria-labelledby="pull-ref-heading"
      onSubmit={(e) => {
        e.preventDefault();
        onPull(ref.trim());
      }}
    >
      <h3 id="pull-ref-heading">Pull by reference</h3>
      <label for="pull-ref">Reference</label>
      <input id="pull-ref" required value={ref} placeholder="hf.co/org/repo:Q4_K_M" onInput={(e) => setRef((e.target as HTMLInputElement).value)} />
      <p class="note">The id is derived from the file the quant picks.</p>
      <button type="submit">Pull</button>
    </form>
  );
}

function PullCard({ pull, onCancel }: { pull: TrackedPull; onCancel: () => Promise<void> }) {
  const { status } = pull;
  const [cancelError, setCancelError] = useState<unknown>(null);
  const finished = isFinished(status);
  const total = status.bytes_total;
  const done = status.state === 'completed' && total > 0 ? total : status.bytes_downloaded;
  const eta = status.eta_s ?? etaSeconds(total, done, status.throughput_bps);
  const headingId = `pull-${status.model_id.replace(/[^a-z0-9_-]/gi, '_')}`;
  return (
    <article class={`pull ${status.state}`} aria-labelledby={headingId}>
      <div class="view-head">
        <h4 id={headingId}>{status.model_id}</h4>
        <span class={`badge ${status.state}`}>{status.state}</span>
      </div>
      {total > 0 ? (
        <progress aria-label={status.model_id} max={total} value={done} />
      ) : (
        <progress aria-label={status.model_id} />
      )}
      <p class="numbers">
        {formatBytes(done)} of {total > 0 ? formatBytes(total) : '…'}
        {!finished && (
          <>
            {' · '}
            {formatRate(status.throughput_bps)} · ETA {formatEta(eta)}
          </>
        )}
        {status.attempts > 1 && ` · attempt ${status.attempts}`}
        {pull.reconnectInMs !== undefined && ` · reconnecting in ${Math.ceil(pull.reconnectInMs / 1000)} s`}
      </p>
      {status.hf_repo && <p class="note">{status.hf_repo}{status.revision ? ` @ ${status.revision.slice(0, 10)}` : ''}</p>}
      {status.files.length > 0 && (
        <details>
          <summary>
            {status.files.length} file{status.files.length === 1 ? '' : 's'}
          </summary>
          <ul class="files">
            {status.files.map((f) => (
              <li>
                <span class="wrap">{f.hf_filename}</span> {formatBytes(f.bytes_done)} / {formatBytes(f.bytes_total)}
                {f.verified_by && ` · verified by ${f.verified_by}`}
              </li>
            ))}
          </ul>
        </details>
      )}
      {status.state === 'failed' && <ErrorNote error={{ code: status.error_code ?? 'pull.failed', message: status.error ?? 'the pull failed' }} />}
      {status.state === 'cancelled' && <p class="note">Cancelled: nothing was installed.</p>}
      {status.state === 'completed' && <p class="ok">Installed; it is in Models.</p>}
      {!finished && (
        <button
          class="danger"
          onClick={() => {
            setCancelError(null);
            onCancel().catch(setCancelError);
          }}
        >
          Cancel
        </button>
      )}
      <ErrorNote error={cancelError} />
    </article>
  );
}

/** The curated catalogue and the FLM tags in the registry, each with a Pull button. */
function Catalogue({ models, onPull }: { models: ModelRow[] | undefined; onPull: (id: string) => void }) {
  const catalogue = usePoll<{ models: CatalogueItem[] }, CatalogueItem[]>('/api/catalogue', 30_000, (b) => b.models);
  const flmRows = useMemo(() => (models ?? []).filter((m) => m.metadata?.runtime === 'flm'), [models]);
  return (
    <>
      <h3>Catalogue</h3>
      <ErrorNote error={catalogue.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Model</th>
              <th scope="col">Size</th>
              <th scope="col">Kind</th>
              <th scope="col">Backend</th>
              <th scope="col">Pull</th>
            </tr>
          </thead>
          <tbody>
            {(catalogue.data ?? []).map((item) => (
              <tr>
                <th scope="row">{item.id}</th>
                <td class="wrap" title={item.description}>
                  {item.display_name}
                </td>
                <td class="num">{item.size_gb} GB</td>
                <td>{item.capability}</td>
                <td>{item.backend === 'npu' ? 'FLM (npu)' : item.backend}</td>
                <td>{item.in_registry ? <span class="badge verified">in registry</span> : <button onClick={() => onPull(item.id)}>Pull</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>FLM tags</h3>
      {flmRows.length === 0 ? (
        <p class="note">No FLM rows in the registry (FLM tags from the catalogue are listed above).</p>
      ) : (
        <ul class="tags">
          {flmRows.map((m) => (
            <li>
              <code>{m.id}</code> {m.pullable === false && <span class="note">(no NPU runtime here)</span>}{' '}
              <button onClick={() => onPull(m.id)} disabled={m.pullable === false}>
                Pull
              </button>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

