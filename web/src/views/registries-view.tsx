import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, apiJson, seg } from '../api.js';
import { ErrorNote, View } from '../components.js';
import { formatBytes, formatTime } from '../format.js';
import type { BentoModel, FileRegistry } from '../types.js';

/** File registries (BentoML layout): each one's versions, newest first; import and export archives. */
export function RegistriesView() {
  const [registries, setRegistries] = useState<FileRegistry[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    apiJson<{ registries: FileRegistry[] }>('/api/registries')
      .then((b) => setRegistries(b.registries))
      .catch(setError);
  }, []);
  return (
    <View id="registries" title="File registries">
      <ErrorNote error={error} />
      {registries && registries.length === 0 && <p>No file registries configured (`[registries.NAME] url = "file:///..."` in config.toml).</p>}
      {(registries ?? []).map((r) => (
        <RegistryPanel key={r.name} registry={r} />
      ))}
    </View>
  );
}

function RegistryPanel({ registry }: { registry: FileRegistry }) {
  const [versions, setVersions] = useState<BentoModel[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const headingId = `registry-${registry.name}`;

  const load = useCallback(async () => {
    try {
      setVersions((await apiJson<{ models: BentoModel[] }>(`/api/registries/${seg(registry.name)}/models`)).models);
    } catch (err) {
      setError(err);
    }
  }, [registry.name]);
  useEffect(() => void load(), [load]);

  const importArchive = async () => {
    const file = fileInput.current?.files?.[0];
    if (!file) return;
    setBusy(true);
    setError(null);
    setMessage(`Uploading ${file.name} (${formatBytes(file.size)})…`);
    try {
      // The archive goes up as raw bytes; the server streams it to disk, never whole in memory.
      const res = await api(`/api/registries/${seg(registry.name)}/import`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: file });
      const model = (await res.json()) as BentoModel;
      setMessage(`Imported ${model.tag}.`);
      if (fileInput.current) fileInput.current.value = '';
      await load();
    } catch (err) {
      setMessage('');
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const exportVersion = async (m: BentoModel) => {
    setError(null);
    try {
      const res = await api(`/api/registries/${seg(registry.name)}/models/${seg(m.name)}/${seg(m.version)}/export`);
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${m.name}-${m.version}.bentomodel`;
      const url = URL.createObjectURL(await res.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setMessage(`Exported ${m.tag} as ${name}.`);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <section class="card registry" aria-labelledby={headingId}>
      <h3 id={headingId}>
        {registry.name} <span class="note">{registry.url}</span>
      </h3>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void importArchive();
        }}
      >
        <label for={`${headingId}-file`}>Archive (.bentomodel)</label>
        <input id={`${headingId}-file`} ref={fileInput} type="file" accept=".bentomodel,.tar.gz,.tgz,.tar.xz,application/gzip,application/x-xz" required />
        <button type="submit" disabled={busy}>
          Import
        </button>
      </form>
      <p aria-live="polite" class="ok">
        {message}
      </p>
      <ErrorNote error={error} />
      {versions && versions.length === 0 && <p>No models yet.</p>}
      {versions && versions.length > 0 && (
        <div class="scroll">
          <table>
            <caption class="sr-only">Versions in {registry.name}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Tag</th>
                <th scope="col">Created</th>
                <th scope="col">Size</th>
                <th scope="col">Module</th>
                <th scope="col">Export</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((m) => (
                <tr>
                  <th scope="row">{m.tag}</th>
                  <td>{formatTime(m.creation_time)}</td>
                  <td>{String(m.info.size ?? '—')}</td>
                  <td>{String(m.info.module ?? '—')}</td>
                  <td>{m.error ? <span class="error">{m.error}</span> : <button onClick={() => void exportVersion(m)}>Export</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
