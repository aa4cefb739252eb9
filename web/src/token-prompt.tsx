import { useEffect, useRef } from 'preact/hooks';

export interface TokenRequest {
  /** The token sent before was refused. */
  refused: boolean;
  resolve: (token: string | null) => void;
}

/** Asked once when the API answers 401; the token is kept for this tab only (sessionStorage). */
export function TokenPrompt({ request, onDone }: { request: TokenRequest; onDone: (token: string | null) => void }) {
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), [request]);
  return (
    <section class="view token" aria-labelledby="token-heading">
      <h2 id="token-heading">Token required</h2>
      <p>
        {request.refused ? 'The API refused that token. ' : 'This Ferry asks for an API token. '}
        It is kept for this tab only and sent as an Authorization header.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const token = input.current?.value.trim() ?? '';
          onDone(token || null);
        }}
      >
        <label for="api-token">API token</label>
        <input id="api-token" ref={input} type="password" autocomplete="off" spellcheck={false} required />
        <button type="submit">Use token</button>
        <button type="button" class="secondary" onClick={() => onDone(null)}>
          Not now
        </button>
      </form>
    </section>
  );
}
