/**
 * The page's one way to the API. The token, when the API wants one, is asked for once (see
 * token-prompt.tsx), kept in sessionStorage (this tab only, gone when it closes) and sent as
 * `Authorization: Bearer`; it never goes into a URL.
 */

const TOKEN_KEY = 'ferry.api-token';

/** An API error as the server sends it: `{"error": {"code", "message", "hint"?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

type TokenAsker = (refused: boolean) => Promise<string | null>;
let asker: TokenAsker | undefined;
let pendingAsk: Promise<string | null> | undefined;

/** The page registers how to ask (a password field labelled `API token`). */
export function setTokenAsker(fn: TokenAsker): void {
  asker = fn;
}

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives in this page's memory only
  }
}

let memoryToken: string | null = storedToken();

/** One prompt for any number of requests that got a 401 at the same time. */
function askForToken(refused: boolean): Promise<string | null> {
  if (!asker) return Promise.resolve(null);
  pendingAsk ??= asker(refused).then((token) => {
    pendingAsk = undefined;
    memoryToken = token;
    storeToken(token);
    return token;
  });
  return pendingAsk;
}

/** A 401 that is about the API token (not a Hub credential relayed by a pull pre-flight). */
function wantsToken(res: Response, code: string): boolean {
  return res.status === 401 && !code.startsWith('source.');
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; hint?: string } };
    if (body.error?.code) return new ApiError(res.status, body.error.code, body.error.message ?? `HTTP ${res.status}`, body.error.hint);
  } catch {
    // not JSON: a proxy's page, say
  }
  return new ApiError(res.status, `http.${res.status}`, text.slice(0, 200) || `HTTP ${res.status} ${res.statusText}`);
}

/**
 * fetch() against this server with the token; a 401 asks for the token (once) and retries.
 * Resolves with the response when it is 2xx, else rejects with an ApiError.
 */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  let refused = false;
  for (let attempt = 0; attempt < 4; attempt++) {
    const token = pendingAsk ? await pendingAsk : memoryToken;
    const headers = new Headers(init.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
    if (res.ok) return res;
    const error = await errorOf(res);
    if (!wantsToken(res, error.code)) throw error;
    // A token we sent was refused: ask again, saying so; no token yet: ask.
    refused = Boolean(token);
    const next = await askForToken(refused);
    if (!next) throw error;
  }
  throw new ApiError(401, 'auth.refused', 'the API refused the token');
}

/** GET (or any method) returning parsed JSON. */
export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await api(path, init);
  return (await res.json()) as T;
}

/** POST with a JSON body (`{}` when none: the API takes JSON bodies only). */
export function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return apiJson<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Path segment for an id that may hold `:` or `/` (FLM tags, `hf.co/...` references). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** The message to show for any failure: code, message and hint when the API gave them. */
export function describeError(err: unknown): { code: string; message: string; hint?: string } {
  if (err && typeof err === 'object' && 'code' in err && 'message' in err) {
    const { code, message, hint } = err as { code: unknown; message: unknown; hint?: unknown };
    return { code: String(code), message: String(message), ...(hint ? { hint: String(hint) } : {}) };
  }
  return { code: 'network', message: (err as Error)?.message ?? String(err) };
}
