import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, apiJson, ApiError, postJson, seg } from '../api.js';
import { ErrorNote, View } from '../components.js';
import { formatBytes, formatTime, shortHash } from '../format.js';
import { filterModels, modelHealth, modelSize, modelSource, pageOf, sortModels, type SortDir, type SortKey } from '../model-table.js';
import type { ModelRow } from '../types.js';

interface Props {
  models: ModelRow[] | undefined;
  error: unknown;
  slotMap: Map<string, string[]>;
  reload: () => Promise<void>;
}

const COLUMNS: Array<[SortKey, string]> = [
  ['id', 'Id'],
  ['size', 'Size'],
  ['source', 'Source'],
  ['revision', 'Revision'],
  ['backends', 'Backends'],
  ['status', 'Status'],
  ['slots', 'Slots'],
];

interface RowAction {
  /** What the row shows in its status cell while a verify runs or after it ended. */
  verify?: string;
  confirmDelete?: boolean;
  error?: unknown;
  explain?: string;
}

/** Every registry row: searchable, sortable, one page of 50 rendered at a time (10,000 rows stay fast). */
export function ModelsView({ models, error, slotMap, reload }: Props) {
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; dir: SortDir }>({ key: 'id', dir: 'asc' });
  const [page, setPage] = useState(0);
  const [openId, setOpenId] = useState<string | null>(null);
  const [actions, setActions] = useState<Record<string, RowAction>>({});

  const filtered = useMemo(() => filterModels(models ?? [], query), [models, query]);
  const sorted = useMemo(() => sortModels(filtered, sort.key, sort.dir, slotMap), [filtered, sort, slotMap]);
  const shown = pageOf(sorted, page);
  useEffect(() => setPage(0), [query, sort]);

  const setAction = (id: string, action: RowAction | undefined) => setActions((all) => ({ ...all, [id]: action ?? {} }));

  const verify = async (id: string) => {
    setAction(id, { verify: 'verifying…' });
    try {
      await postJson(`/api/models/${seg(id)}/verify`);
      for (let i = 0; i < 7200; i++) {
        const status = await apiJson<{ state: string; bytes_total: number; bytes_done: number; reason: string | null; error: string | null }>(
          `/api/models/${seg(id)}/verify/status`,
        );
        if (['ok', 'corrupt', 'not_verifiable', 'failed'].includes(status.state)) {
          setAction(id, { verify: status.state === 'ok' ? 'verified just now' : status.state.replace('_', ' ') + (status.reason || status.error ? `: ${status.reason ?? status.error}` : '') });
          await reload();
          return;
        }
        setAction(id, { verify: status.bytes_total > 0 ? `verifying ${Math.floor((status.bytes_done / status.bytes_total) * 100)}%` : 'verifying…' });
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (err) {
      setAction(id, { error: err });
    }
  };

  const remove = async (id: string) => {
    try {
      await api(`/api/models/${seg(id)}`, { method: 'DELETE' });
      setAction(id, undefined);
      if (openId === id) setOpenId(null);
      await reload();
    } catch (err) {
      const explain =
        err instanceof ApiError && err.code === 'model.in_use'
          ? `A slot uses this model (${(slotMap.get(id) ?? []).join(', ') || 'see Slots'}): assign that slot another model, then delete.`
          : undefined;
      setAction(id, { error: err, explain });
    }
  };

  const toggleSort = (key: SortKey) => setSort((s) => ({ key, dir: s.key === key && s.dir === 'asc' ? 'desc' : 'asc' }));
  const opened = openId ? (models ?? []).find((m) => m.id === openId) : undefined;

  return (
    <View id="models" title="Models" actions={<button class="secondary" onClick={() => void reload()}>Refresh</button>}>
      <ErrorNote error={error} />
      <div class="toolbar">
        <label>
          Search <input type="search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} placeholder="id, repo, file, backend, tag" />
        </label>
        <span aria-live="polite">
          {models === undefined ? 'Loading…' : `${filtered.length} of ${models.length} models`}
        </span>
      </div>
      <div class="scroll">
        <table class="models">
          <caption class="sr-only">Registry models, sorted by {sort.key} ({sort.dir === 'asc' ? 'ascending' : 'descending'})</caption>
          <thead>
            <tr>
              {COLUMNS.map(([key, label]) => (
                <th scope="col" aria-sort={sort.key === key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}>
                  <button class="sort" onClick={() => toggleSort(key)}>
                    {label}
                    <span aria-hidden="true">{sort.key === key ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
                  </button>
                </th>
              ))}
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.rows.map((row) => (
              <ModelRowView
                key={row.id}
                row={row}
                slots={slotMap.get(row.id) ?? []}
                action={actions[row.id] ?? {}}
                open={openId === row.id}
                onOpen={() => setOpenId(openId === row.id ? null : row.id)}
                onVerify={() => void verify(row.id)}
                onDelete={() => setAction(row.id, { confirmDelete: true })}
                onConfirmDelete={() => void remove(row.id)}
                onKeep={() => setAction(row.id, undefined)}
              />
            ))}
          </tbody>
        </table>
      </div>
      {models && models.length === 0 && <p>The registry is empty: pull a model below.</p>}
      {shown.pages > 1 && (
        <nav class="pager" aria-label="Model pages">
          <button disabled={shown.page === 0} onClick={() => setPage(shown.page - 1)}>
            Previous page
          </button>
          <span>
            Page {shown.page + 1} of {shown.pages}
          </span>
          <button disabled={shown.page >= shown.pages - 1} onClick={() => setPage(shown.page + 1)}>
            Next page
          </button>
        </nav>
      )}
      {opened && <ModelDetails row={opened} slots={slotMap.get(opened.id) ?? []} onClose={() => setOpenId(null)} />}
    </View>
  );
}

interface RowProps {
  row: ModelRow;
  slots: string[];
  action: RowAction;
  open: boolean;
  onOpen: () => void;
  onVerify: () => void;
  onDelete: () => void;
  onConfirmDelete: () => void;
  onKeep: () => void;
}

function ModelRowView({ row, slots, action, open, onOpen, onVerify, onDelete, onConfirmDelete, onKeep }: RowProps) {
  const health = modelHealth(row);
  return (
    <>
      <tr data-model-id={row.id}>
        <th scope="row">
          <button class="link" aria-expanded={open} onClick={onOpen} title="Show details">
            {row.id}
          </button>
        </th>
        <td class="num">{formatBytes(modelSize(row))}</td>
        <td class="wrap">{modelSource(row) || '—'}</td>
        <td>
          <code title={row.revision}>{shortHash(row.revision, 10)}</code>
        </td>
        <td>{(row.backends ?? []).join(', ') || '—'}</td>
        <td>
          <span class={`badge ${health}`}>{health}</span>
          {action.verify && <span class="note"> {action.verify}</span>}
        </td>
        <td>{slots.join(', ') || '—'}</td>
        <td class="actions">
          <button onClick={onVerify}>Verify</button>
          <button class="danger" onClick={onDelete}>
            Delete
          </button>
        </td>
      </tr>
      {(action.confirmDelete || action.error) && (
        <tr class="row-note">
          <td colSpan={8}>
            {action.confirmDelete && (
              <span>
                Delete <strong>{row.id}</strong> and the weights it owns?{' '}
                <button class="danger" onClick={onConfirmDelete}>
                  Confirm delete
                </button>{' '}
                <button class="secondary" onClick={onKeep}>
                  Keep
                </button>
              </span>
            )}
            <ErrorNote error={action.error} extra={action.explain} />
          </td>
        </tr>
      )}
    </>
  );
}

function ModelDetails({ row, slots, onClose }: { row: ModelRow; slots: string[]; onClose: () => void }) {
  const files = row.files?.length ? row.files : [{ path: row.path, sha256: row.sha256, size_bytes: row.size_bytes }];
  const corrupt = row.metadata?.corrupt as { expected?: string; found?: string; file?: string; at?: string } | undefined;
  const fields: Array<[string, unknown]> = [
    ['Name', row.name],
    ['Path', row.path],
    ['Source', modelSource(row)],
    ['Revision', row.revision],
    ['Backends', row.backends?.join(', ')],
    ['Capabilities', row.capabilities?.join(', ')],
    ['Tags', row.tags?.join(', ')],
    ['Created', row.created_at && formatTime(row.created_at)],
    ['Verified', row.verified_at && formatTime(row.verified_at)],
    ['Slots', slots.join(', ')],
  ];
  return (
    <section class="details" aria-labelledby="details-heading">
      <div class="view-head">
        <h3 id="details-heading">Details of {row.id}</h3>
        <button class="secondary" onClick={onClose}>
          Close details
        </button>
      </div>
      {corrupt && (
        <p class="error" role="status">
          Corrupt: {corrupt.file} has sha256 {corrupt.found}, expected {corrupt.expected} (found {formatTime(corrupt.at)}).
        </p>
      )}
      <dl class="facts">
        {fields
          .filter(([, v]) => v !== undefined && v !== '' && v !== null)
          .map(([k, v]) => (
            <>
              <dt>{k}</dt>
              <dd>{String(v)}</dd>
            </>
          ))}
      </dl>
      <div class="scroll">
        <table>
          <caption>Files</caption>
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Size</th>
              <th scope="col">SHA-256</th>
            </tr>
          </thead>
          <tbody>
            {files.map((f) => (
              <tr>
                <td class="wrap">{f.path}</td>
                <td class="num">{formatBytes(f.size_bytes)}</td>
                <td>
                  <code class="digest">{f.sha256 ?? '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {row.metadata && Object.keys(row.metadata).length > 0 && (
        <>
          <h4>Metadata</h4>
          <pre class="metadata">{JSON.stringify(row.metadata, null, 2)}</pre>
        </>
      )}
    </section>
  );
}
