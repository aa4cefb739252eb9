import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { apiJson, postJson, seg } from '../api.js';
import { ErrorNote, View, type Poll } from '../components.js';
import { formatBytes, formatEta, formatRate, formatTime } from '../format.js';
import type { ModelRow, PullStatus, SlotView } from '../types.js';

interface Props {
  slots: Poll<SlotView[]>;
  models: ModelRow[] | undefined;
}

/** How many of a slot's observed states the lifecycle trail keeps. */
const TRAIL = 6;

/** Each slot's state as it changes (polled every second), and Assign / Swap with a model picker. */
export function SlotsView({ slots, models }: Props) {
  const trails = useTrails(slots.data);
  const pulls = useSlotPulls(slots.data);
  // One datalist for every picker, rebuilt only when the registry changes (it may hold 10,000 ids).
  const options = useMemo(
    () => (
      <datalist id="model-ids">
        {(models ?? []).map((m) => (
          <option value={m.id} />
        ))}
      </datalist>
    ),
    [models],
  );
  return (
    <View id="slots" title="Slots">
      <ErrorNote error={slots.error} />
      {options}
      {slots.data && slots.data.length === 0 && <p>No slots configured (see `ferry init`, or slot files in the slots directory).</p>}
      {slots.data && slots.data.length > 0 && (
        <div class="scroll">
          <table class="slots">
            <thead>
              <tr>
                <th scope="col">Slot</th>
                <th scope="col">State</th>
                <th scope="col">Model</th>
                <th scope="col">Port</th>
                <th scope="col">Device</th>
                <th scope="col">Message</th>
                <th scope="col">Change model</th>
              </tr>
            </thead>
            <tbody>
              {slots.data.map((slot) => (
                <SlotRow key={slot.name} slot={slot} trail={trails[slot.name] ?? []} pull={pulls[slot.name]} onChanged={slots.refresh} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </View>
  );
}

function SlotRow({ slot, trail, pull, onChanged }: { slot: SlotView; trail: string[]; pull?: PullStatus; onChanged: () => Promise<void> }) {
  const [model, setModel] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState('');
  const change = async (action: 'assign' | 'swap') => {
    setError(null);
    setNote('');
    try {
      const started = await postJson<{ action: string; state: string }>(`/api/slots/${seg(slot.name)}/${action}`, { model: model.trim() });
      setNote(started.action === 'pull' ? 'pulling first, then warming' : 'warming');
      await onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <tr data-slot={slot.name}>
      <th scope="row">{slot.name}</th>
      <td>
        <span class={`badge ${slot.state}`} data-testid="slot-state">
          {slot.state}
        </span>
        {trail.length > 1 && <div class="trail" aria-label={`${slot.name} went through`}>{trail.join(' → ')}</div>}
        {slot.state === 'pulling' && pull && <SlotPull pull={pull} />}
      </td>
      <td>{slot.model_id ?? slot.model ?? '—'}</td>
      <td class="num">{slot.port}</td>
      <td>{slot.device}</td>
      <td class="wrap message">
        {slot.message ?? ''}
        <div class="note">updated {formatTime(slot.updated_at)}</div>
      </td>
      <td>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void change('assign');
          }}
        >
          <input aria-label={`Model for ${slot.name}`} list="model-ids" value={model} required placeholder="model id" onInput={(e) => setModel((e.target as HTMLInputElement).value)} />
          <button type="submit">Assign</button>
          <button type="button" onClick={() => model.trim() && void change('swap')} title="Pulls the model first when it is not on disk">
            Swap
          </button>
        </form>
        {note && <p class="note">{note}</p>}
        <ErrorNote error={error} />
      </td>
    </tr>
  );
}

function SlotPull({ pull }: { pull: PullStatus }) {
  return (
    <div class="slot-pull">
      {pull.bytes_total > 0 ? <progress aria-label={pull.model_id} max={pull.bytes_total} value={pull.bytes_downloaded} /> : <progress aria-label={pull.model_id} />}
      <div class="note">
        {pull.model_id}: {formatBytes(pull.bytes_downloaded)} of {formatBytes(pull.bytes_total)} · {formatRate(pull.throughput_bps)} · ETA {formatEta(pull.eta_s)}
      </div>
    </div>
  );
}

/** The states each slot was seen in, in order (a slot going offline -> warming -> ready shows that path). */
function useTrails(slots: SlotView[] | undefined): Record<string, string[]> {
  const [trails, setTrails] = useState<Record<string, string[]>>({});
  useEffect(() => {
    if (!slots) return;
    setTrails((old) => {
      let changed = false;
      const next = { ...old };
      for (const s of slots) {
        const trail = old[s.name] ?? [];
        if (trail[trail.length - 1] !== s.state) {
          next[s.name] = [...trail, s.state].slice(-TRAIL);
          changed = true;
        }
      }
      return changed ? next : old;
    });
  }, [slots]);
  return trails;
}

/** For slots in `pulling`: their pull's status, from the slot's own detail (GET /api/slots/:name). */
function useSlotPulls(slots: SlotView[] | undefined): Record<string, PullStatus> {
  const [pulls, setPulls] = useState<Record<string, PullStatus>>({});
  const busy = useRef(false);
  useEffect(() => {
    const pulling = (slots ?? []).filter((s) => s.state === 'pulling');
    if (pulling.length === 0 || busy.current) return;
    busy.current = true;
    void Promise.all(
      pulling.map((s) =>
        apiJson<{ pull: PullStatus | null }>(`/api/slots/${seg(s.name)}`)
          .then((d) => [s.name, d.pull] as const)
          .catch(() => [s.name, null] as const),
      ),
    )
      .then((entries) => {
        const next: Record<string, PullStatus> = {};
        for (const [name, pull] of entries) if (pull) next[name] = pull;
        setPulls(next);
      })
      .finally(() => (busy.current = false));
  }, [slots]);
  return pulls;
}
