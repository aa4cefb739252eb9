import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { apiJson, setTokenAsker } from './api.js';
import { usePoll } from './components.js';
import { slotsByModel } from './model-table.js';
import { PullTracker } from './pull-tracker.js';
import { TokenPrompt, type TokenRequest } from './token-prompt.js';
import type { ModelRow, SlotView } from './types.js';
import { ModelsView } from './views/models-view.js';
import { PullsView } from './views/pulls-view.js';
import { RegistriesView } from './views/registries-view.js';
import { SlotsView } from './views/slots-view.js';
import { WorkersView } from './views/workers-view.js';

const VIEWS = [
  ['models', 'Models'],
  ['pulls', 'Pulls'],
  ['slots', 'Slots'],
  ['registries', 'File registries'],
  ['workers', 'Workers'],
] as const;

/**
 * The dashboard: one page, five views. The registry list is fetched once and again whenever
 * something changes it from here (a pull ends, a delete, a verify); slots, pulls and workers
 * are polled (pulls in flight are followed live over SSE).
 */
export function App() {
  const [models, setModels] = useState<ModelRow[] | undefined>(undefined);
  const [modelsError, setModelsError] = useState<unknown>(null);
  const [tokenRequest, setTokenRequest] = useState<TokenRequest | null>(null);

  const loadModels = useCallback(async () => {
    try {
      const { models: rows } = await apiJson<{ models: ModelRow[] }>('/api/models');
      setModels(rows);
      setModelsError(null);
    } catch (err) {
      setModelsError(err);
    }
  }, []);

  useEffect(() => {
    setTokenAsker((refused) => new Promise((resolve) => setTokenRequest({ refused, resolve })));
  }, []);

  const tracker = useMemo(() => new PullTracker((status) => status.state === 'completed' && void loadModels()), [loadModels]);
  useEffect(() => {
    void loadModels();
    tracker.start();
    return () => tracker.stop();
  }, [tracker, loadModels]);

  const slots = usePoll<{ slots: SlotView[] }, SlotView[]>('/api/slots', 1000, (b) => b.slots);
  const slotMap = useMemo(() => slotsByModel(slots.data ?? []), [slots.data]);

  return (
    <>
      <header class="top">
        <h1>Ferry</h1>
        <nav aria-label="Views">
          {VIEWS.map(([id, title]) => (
            <a href={`#${id}`}>{title}</a>
          ))}
        </nav>
      </header>
      {tokenRequest && (
        <TokenPrompt
          request={tokenRequest}
          onDone={(token) => {
            setTokenRequest(null);
            tokenRequest.resolve(token);
          }}
        />
      )}
      <main>
        <ModelsView models={models} error={modelsError} slotMap={slotMap} reload={loadModels} />
        <PullsView models={models} tracker={tracker} />
        <SlotsView slots={slots} models={models} />
        <RegistriesView />
        <WorkersView />
      </main>
    </>
  );
}
