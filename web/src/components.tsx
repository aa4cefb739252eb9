import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { apiJson, describeError } from './api.js';

/** An API failure as the user sees it: the code, the message, and the hint (what to do). */
export function ErrorNote({ error, extra }: { error: unknown; extra?: string }) {
  if (!error) return null;
  const { code, message, hint } = describeError(error);
  return (
    <div class="error" role="alert">
      <code>{code}</code> <span>{message}</span>
      {hint && <p class="hint">Hint: {hint}</p>}
      {extra && <p class="hint">{extra}</p>}
    </div>
  );
}

export interface Poll<T> {
  data: T | undefined;
  error: unknown;
  refresh: () => Promise<void>;
}

/**
 * GETs `path` now and every `everyMs` (never two at once); `pick` takes the part the view uses.
 * A hidden tab stops polling and catches up when it is shown again.
 */
export function usePoll<B, T>(path: string, everyMs: number, pick: (body: B) => T): Poll<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const busy = useRef(false);
  const pickRef = useRef(pick);
  pickRef.current = pick;
  const refresh = useCallback(async () => {
    if (busy.current) return;
    busy.current = true;
    try {
      setData(pickRef.current(await apiJson<B>(path)));
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      busy.current = false;
    }
  }, [path]);
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') void refresh();
    }, everyMs);
    const onShow = () => document.visibilityState === 'visible' && void refresh();
    document.addEventListener('visibilitychange', onShow);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onShow);
    };
  }, [refresh, everyMs]);
  return { data, error, refresh };
}

/** A landmark with a heading: every view is one, so screen readers and tests find them alike. */
export function View({ id, title, children, actions }: { id: string; title: string; children: preact.ComponentChildren; actions?: preact.ComponentChildren }) {
  return (
    <section id={id} class="view" aria-labelledby={`${id}-heading`}>
      <div class="view-head">
        <h2 id={`${id}-heading`}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}
